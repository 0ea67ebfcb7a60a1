"""A study folder is untrusted input: its manifest never makes the tool read or write outside the folder,
and a save deletes only the study's own superseded files, never through a symbolic link."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from test_study import paint, volume

from napari_weakseg.errors import InputError
from napari_weakseg.study import Study, load_study, save_study


def saved_study(tmp_path: Path) -> Path:
    study = Study()
    study.add_image(volume(), name="Flair")
    paint(study, 0, 2)
    return save_study(study, tmp_path / "study")


def edit_manifest(folder: Path, **changes) -> None:
    manifest = json.loads((folder / "study.json").read_text())
    manifest["images"][0].update(changes)
    (folder / "study.json").write_text(json.dumps(manifest))


def test_a_crafted_image_name_never_writes_outside(tmp_path):
    """The reported attack: name ../../victim/Flair made the next save overwrite victim/Flair.nii.gz."""
    folder = saved_study(tmp_path)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "Flair.nii.gz").write_bytes(b"the user's scan")
    for name in ("../../victim/Flair", "/tmp/Flair", "a/b", "", 7):
        edit_manifest(folder, name=name)
        with pytest.raises(InputError, match="not a plain file name"):
            load_study(folder)
    assert (victim / "Flair.nii.gz").read_bytes() == b"the user's scan"


@pytest.mark.parametrize("path", ["../outside.nii.gz", "/etc/hostname", "images/../../outside.nii.gz", "study.json", "notes/x.nii.gz"])
def test_files_the_manifest_names_must_lie_in_images_or_masks(tmp_path, path):
    folder = saved_study(tmp_path)
    (tmp_path / "outside.nii.gz").write_bytes((folder / "images" / "Flair.nii.gz").read_bytes())
    edit_manifest(folder, image_file=path)
    with pytest.raises(InputError, match="outside the study's images/ and masks/"):
        load_study(folder)


def test_a_symbolic_link_leading_out_is_refused(tmp_path):
    folder = saved_study(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / "images" / "Flair.nii.gz").rename(elsewhere / "Flair.nii.gz")
    os.symlink(elsewhere / "Flair.nii.gz", folder / "images" / "Flair.nii.gz")
    with pytest.raises(InputError, match="leads outside the study folder"):
        load_study(folder)


def test_saving_never_writes_or_deletes_through_a_linked_subfolder(tmp_path):
    """The reported loss: images/ linked to another folder, a save deleted the user's notes and another scan."""
    folder = saved_study(tmp_path)
    study = load_study(folder)
    other = tmp_path / "other"
    (folder / "masks").rename(other)
    (other / "notes.txt").write_text("mine")
    os.symlink(other, folder / "masks")
    before = sorted(p.name for p in other.iterdir())
    paint(study, 0, 3)
    with pytest.raises(InputError, match="symbolic link"):
        save_study(study)
    assert sorted(p.name for p in other.iterdir()) == before


def test_a_save_deletes_only_the_studys_own_superseded_files(tmp_path):
    folder = saved_study(tmp_path)
    (folder / "images" / "notes.txt").write_text("mine")
    (folder / "images" / "T1.nii.gz").write_bytes(b"another scan")  # not a file of this study
    (folder / "masks" / "Flair-old-copy.nii.gz").write_bytes(b"mine too")
    study = load_study(folder)
    old_mask = json.loads((folder / "study.json").read_text())["images"][0]["mask_file"]
    paint(study, 0, 4)
    save_study(study)
    new_mask = json.loads((folder / "study.json").read_text())["images"][0]["mask_file"]
    assert new_mask != old_mask and not (folder / old_mask).exists() and (folder / new_mask).is_file()
    assert (folder / "images" / "notes.txt").read_text() == "mine"
    assert (folder / "images" / "T1.nii.gz").read_bytes() == b"another scan"
    assert (folder / "masks" / "Flair-old-copy.nii.gz").read_bytes() == b"mine too"
    again = load_study(folder)
    assert np.array_equal(again.images[0].mask, study.images[0].mask)


def test_two_images_with_one_name_are_refused(tmp_path):
    study = Study()
    study.add_image(volume(), name="A")
    study.add_image(volume(seed=1), name="B")
    folder = save_study(study, tmp_path / "study")
    manifest = json.loads((folder / "study.json").read_text())
    manifest["images"][1]["name"] = "A"
    (folder / "study.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="two images are named 'A'"):
        load_study(folder)


def test_a_first_save_killed_midway_leaves_a_folder_the_same_command_can_use(tmp_path, monkeypatch):
    """A kill cannot run clean-up code: the marker of an unfinished first save tells the next one what to clear."""
    import napari_weakseg.study.folder as folder_mod

    study = Study()
    study.add_image(volume(), name="Flair")
    target = tmp_path / "new"

    def killed(*args, **kwargs):  # as if the process died while writing the manifest: no clean-up runs
        raise SystemExit(9)

    monkeypatch.setattr(folder_mod, "write_json_atomic", killed)
    monkeypatch.setattr(folder_mod, "_empty_folder", lambda *a, **k: None)
    with pytest.raises(SystemExit):
        save_study(study, target)
    assert (target / folder_mod.INCOMPLETE).is_file() and (target / "images" / "Flair.nii.gz").is_file()
    monkeypatch.undo()
    fresh = Study()
    fresh.add_image(volume(seed=3), name="Flair")
    save_study(fresh, target)
    assert load_study(target).images[0].name == "Flair" and not (target / folder_mod.INCOMPLETE).exists()
    # a user's own file in such a folder is kept, and the folder then counts as not empty
    other = tmp_path / "other"
    (other / "images").mkdir(parents=True)
    (other / folder_mod.INCOMPLETE).write_text("")
    (other / "images" / "Flair.nii.gz").write_bytes(b"partial")
    (other / "mine.txt").write_text("keep")
    with pytest.raises(InputError, match="not empty"):
        save_study(fresh, other)
    assert (other / "mine.txt").read_text() == "keep" and not (other / "images").exists()


def test_mask_labels_never_wrap_around():
    """A label of 65 536 used to become 0 (the annotation lost, exit 0)."""
    from napari_weakseg.io.case import as_label_dtype

    assert as_label_dtype(np.array([0, 65535])).dtype == np.uint16
    for bad in (np.array([0, 65536]), np.array([-1, 2]), np.array([0.0, np.nan])):
        with pytest.raises(InputError, match="the mask holds"):
            as_label_dtype(bad)


def test_an_empty_nifti_is_refused(tmp_path):
    import nibabel as nib

    from napari_weakseg.io.nifti import read_nifti

    nib.save(nib.Nifti1Image(np.zeros((0, 4, 4), np.float32), np.eye(4)), tmp_path / "empty.nii.gz")
    with pytest.raises(InputError, match="an axis of length 0"):
        read_nifti(tmp_path / "empty.nii.gz")
