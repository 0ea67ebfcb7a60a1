"""The Study model, the study folder (exact, atomic round trips) and the build helpers."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import napari_weakseg.atomic as atomic
import napari_weakseg.study.folder as folder_mod
from napari_weakseg.errors import InputError, SchemaVersionError, WeaksegError
from napari_weakseg.io import load_case
from napari_weakseg.io.case import Volume
from napari_weakseg.study import SCHEMA_VERSION, Study, Tag, load_study, save_study
from napari_weakseg.study.build import keep_masks, parse_amount, tags_from_masks
from napari_weakseg.study.model import StudyImage

P, A, U = Tag.PRESENCE, Tag.ABSENCE, Tag.UNKNOWN


# --- helpers -----------------------------------------------------------------------------


def volume(shape=(6, 8, 10), channels=1, seed=0, spacing=(2.0, 1.0, 0.5)) -> Volume:
    data = np.random.default_rng(seed).random((channels, *shape)).astype(np.float32)
    sz, sy, sx = spacing
    return Volume(data, np.diag([sx, sy, sz, 1.0]), None, spacing, [f"ch{c}" for c in range(channels)], ["synthetic"])


def oblique_nifti(path: Path, ijk_shape=(10, 8, 6), channels=None, seed=0) -> Path:
    """A float32 NIfTI with an oblique, non-unit affine and distinct qform/sform codes."""
    t = np.deg2rad(17.0)
    rot = np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])
    aff = np.eye(4)
    aff[:3, :3] = rot @ np.diag([0.7, 0.9, 3.0])
    aff[:3, 3] = [-80.25, 11.5, 42.0]
    shape = ijk_shape if channels is None else (*ijk_shape, channels)
    img = nib.Nifti1Image(np.random.default_rng(seed).random(shape).astype(np.float32), aff)
    img.header.set_xyzt_units("mm", "sec")
    img.header["descrip"] = b"oblique source"
    img.set_qform(aff, 1)
    img.set_sform(aff, 2)
    nib.save(img, str(path))
    return path


def paint(study: Study, image, s: int, value: int = 1, where=(slice(1, 3), slice(2, 4))):
    """Paint a small square on slice ``s`` (along the image's axis) and tell the study."""
    im = study.images[study.index_of(image)]
    np.moveaxis(im.mask, im.axis, 0)[s][where] = value
    return study.mask_painted(image, [s])


def snapshot(study: Study) -> list[dict]:
    return [
        {
            "name": im.name,
            "tags": im.tags.copy(),
            "confirmed_empty": im.confirmed_empty.copy(),
            "annotated": im.annotated().copy(),
            "mask": im.mask.copy(),
            "data": im.volume.data.copy(),
            "axis": im.axis,
            "channels": list(im.volume.channel_names),
            "spacing": tuple(im.volume.spacing),
            "counts": im.counts(),
        }
        for im in study.images
    ]


def assert_same(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=False):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], np.ndarray):
                assert x[k].dtype == y[k].dtype, k
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{x['name']}: {k}")
            elif k == "spacing":
                assert x[k] == pytest.approx(y[k], abs=1e-6)
            else:
                assert x[k] == y[k], k


def tmp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(atomic.TMP_PREFIX)]


def all_files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def study2(tmp_path):
    """A study of two images: an oblique two-channel NIfTI case and a synthetic volume, with edits."""
    (tmp_path / "src").mkdir()
    src1 = oblique_nifti(tmp_path / "src" / "t1.nii.gz", seed=1)
    src2 = oblique_nifti(tmp_path / "src" / "flair.nii.gz", seed=2)
    st = Study()
    st.add_image(load_case([src1, src2]), name="patient 1")
    st.add_image(volume(shape=(5, 7, 9), seed=3), name="synthetic", axis=2)
    a, b = st.images
    assert a.volume.shape == (6, 8, 10)
    st.set_tags(0, range(0, 2), "absence")
    st.set_tags(0, [2, 3, 4], "presence")
    paint(st, 0, 2)
    paint(st, 0, 3, value=2)
    st.confirm_empty(0, 4)
    paint(st, 1, 1, where=(slice(0, 2), slice(0, 2)))  # unknown -> presence
    st.set_tags(1, [7, 8], "absence")
    return st


# --- the model ---------------------------------------------------------------------------


def test_add_image_names_and_defaults():
    st = Study()
    a = st.add_image(volume(), name="my image!")
    b = st.add_image(volume(), name="my image!")
    c = st.add_image(volume(channels=2))
    d = st.add_image(volume(), name="...")
    assert [a.name, b.name, c.name, d.name] == ["my_image", "my_image_2", "ch0", "image"]
    assert a.mask.shape == (6, 8, 10) and a.mask.dtype == np.uint8 and not a.mask.any()
    assert a.tags.tolist() == [U] * 6 and not a.confirmed_empty.any()
    assert a.counts() == {"slices": 6, "presence": 0, "absence": 0, "unknown": 6, "annotated": 0}
    assert st.index_of("my_image_2") == 1 and st.index_of(c) == 2 and st.index_of(3) == 3
    with pytest.raises(InputError, match="no image named 'nope'"):
        st.index_of("nope")
    with pytest.raises(InputError, match="image index 4 out of range"):
        st.index_of(4)


def test_add_image_with_a_wide_mask_and_bad_inputs():
    st = Study()
    m = np.zeros((6, 8, 10), np.int64)
    m[0, 0, 0] = 300
    im = st.add_image(volume(), mask=m)
    assert im.mask.dtype == np.uint16 and im.mask[0, 0, 0] == 300
    with pytest.raises(InputError, match=r"mask shape \(6, 8, 9\) does not match the image shape \(6, 8, 10\)"):
        st.add_image(volume(), mask=np.zeros((6, 8, 9)))
    with pytest.raises(InputError, match="slice axis must be 0, 1 or 2"):
        st.add_image(volume(), axis=3)
    with pytest.raises(InputError, match="3 tags for 6 slices"):
        StudyImage("x", volume(), np.zeros((6, 8, 10), np.uint8), 0, np.zeros(3, np.uint8))
    with pytest.raises(InputError, match=r"an image must be \(C, Z, Y, X\)"):
        Volume(np.zeros((6, 8, 10), np.float32))


def test_tag_parsing():
    assert Tag.parse("presence") is P and Tag.parse(" P ") is P and Tag.parse("ABSENCE") is A
    assert Tag.parse("u") is U and Tag.parse(A) is A
    assert [t.char for t in Tag] == ["u", "p", "a"]
    with pytest.raises(InputError, match="unknown tag 'maybe'; use presence, absence or unknown"):
        Tag.parse("maybe")


def test_set_tags_int_list_range_and_range_checks():
    st = Study()
    st.add_image(volume(shape=(10, 4, 4)))
    st.set_tags(0, 3, "presence")
    st.set_tags(0, [0, 1, 1], Tag.ABSENCE)
    st.set_tags(0, range(6, 9), "a")
    st.set_tags(0, np.array([9]), "p")
    st.set_tags(0, [], "p")  # nothing to do, not an error
    assert "".join(Tag(t).char for t in st.images[0].tags) == "aaupuuaaap"
    assert st.counts() == {"images": 1, "slices": 10, "presence": 2, "absence": 5, "unknown": 3, "annotated": 0}
    for bad in (10, -1, [2, 11], range(8, 12)):
        with pytest.raises(InputError, match=r"slice out of range 0\.\.9"):
            st.set_tags(0, bad, "presence")
    assert "".join(Tag(t).char for t in st.images[0].tags) == "aaupuuaaap"  # refused edits change nothing
    with pytest.raises(InputError, match="unknown tag"):
        st.set_tags(0, 1, "yes")


def test_changed_signal_and_modified_flag():
    st = Study()
    seen = []
    st.changed.connect(seen.append)
    st.add_image(volume())
    st.add_image(volume())
    st.set_tags(1, 2, "presence")
    st.confirm_empty(1, 2)
    st.undo()
    assert seen == [0, 1, 1, 1, 1]
    assert st.modified


def test_absence_erases_paint_and_undo_restores_it():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)))
    im = st.images[0]
    paint(st, 0, 1, value=1)
    paint(st, 0, 2, value=3, where=(slice(0, 8), slice(5, 6)))
    paint(st, 0, 4)
    before_mask = im.mask.copy()
    assert im.tags.tolist() == [U, P, P, U, P, U]
    rev = im.mask_revision
    st.set_tags(0, [1, 2, 3], "absence")
    assert not im.mask[1:4].any(), "absence means no lesion: paint erased"
    np.testing.assert_array_equal(im.mask[4], before_mask[4])  # other slices untouched
    assert im.mask_revision > rev
    assert im.tags.tolist() == [U, A, A, A, P, U]
    assert im.has_content().tolist() == [False, False, False, False, True, False]
    assert st.undo() is True
    np.testing.assert_array_equal(im.mask, before_mask)
    assert im.tags.tolist() == [U, P, P, U, P, U]
    assert im.has_content().tolist() == [False, True, True, False, True, False]
    assert im.annotated().tolist() == [False, True, True, False, True, False]


def test_absence_on_another_axis_erases_the_right_plane():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)), axis=2)
    im = st.images[0]
    assert im.n_slices == 10
    im.mask[:, :, 3] = 1
    im.mask[:, :, 7] = 1
    st.mask_painted(0, [3, 7])
    assert im.tags[3] == P and im.tags[7] == P and im.tags[0] == U
    assert im.mask_slice(3).shape == (6, 8) and im.mask_slice(3).all()
    assert im.image_slice(3).shape == (1, 6, 8)
    np.testing.assert_array_equal(im.image_slice(3)[0], im.volume.data[0, :, :, 3])
    st.set_tags(0, 3, "absence")
    assert not im.mask[:, :, 3].any() and im.mask[:, :, 7].all()
    st.undo()
    assert im.mask[:, :, 3].all()


def test_clear_tags_is_one_undo_step():
    st = Study()
    st.add_image(volume(shape=(5, 4, 4)))
    st.set_tags(0, [0, 1], "absence")
    st.set_tags(0, [3], "presence")
    st.confirm_empty(0, 3)
    st.clear_tags(0)
    im = st.images[0]
    assert im.tags.tolist() == [U] * 5 and not im.confirmed_empty.any()
    st.undo()
    assert im.tags.tolist() == [A, A, U, P, U]
    assert im.confirmed_empty.tolist() == [False, False, False, True, False]


def test_undo_order_and_empty_history():
    st = Study()
    st.add_image(volume(shape=(4, 4, 4)))
    assert st.can_undo is False and st.undo() is False
    st.set_tags(0, 0, "presence")
    st.set_tags(0, 0, "absence")
    st.set_tags(0, 1, "presence")
    im = st.images[0]
    assert im.tags.tolist() == [A, P, U, U]
    st.undo()
    assert im.tags.tolist() == [A, U, U, U]
    st.undo()
    assert im.tags.tolist() == [P, U, U, U]
    st.undo()
    assert im.tags.tolist() == [U, U, U, U]
    assert st.undo() is False


def test_undo_history_is_bounded():
    st = Study()
    st.add_image(volume(shape=(4, 4, 4)))
    for k in range(250):
        st.set_tags(0, k % 4, "presence" if k % 2 else "absence")
    n = 0
    while st.undo():
        n += 1
    assert n == 200


def test_confirm_empty_rules():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)))
    im = st.images[0]
    st.set_tags(0, [0, 1, 2], "presence")
    st.set_tags(0, 3, "absence")
    paint(st, 0, 2)
    with pytest.raises(InputError, match="only presence slices"):
        st.confirm_empty(0, [1, 3])
    with pytest.raises(InputError, match="only presence slices"):
        st.confirm_empty(0, 5)  # unknown
    with pytest.raises(InputError, match="painted lesion pixels; erase them"):
        st.confirm_empty(0, [1, 2])
    assert not im.confirmed_empty.any(), "refused: nothing changed"
    st.confirm_empty(0, [0, 1])
    assert im.confirmed_empty.tolist() == [True, True, False, False, False, False]
    assert im.annotated().tolist() == [True, True, True, False, False, False]
    assert im.counts()["annotated"] == 3
    st.confirm_empty(0, 1, value=False)  # taking it back is always allowed
    assert im.annotated().tolist() == [True, False, True, False, False, False]
    st.undo()
    assert im.confirmed_empty[1]
    # retagging a confirmed slice drops the confirmation; undo brings it back
    st.set_tags(0, 0, "unknown")
    assert not im.confirmed_empty[0] and not im.annotated()[0]
    st.undo()
    assert im.confirmed_empty[0] and im.annotated()[0]
    st.set_tags(0, 0, "absence")
    assert not im.confirmed_empty[0]
    st.undo()
    # re-tagging presence keeps the confirmation
    st.set_tags(0, 0, "presence")
    assert im.confirmed_empty[0]


def test_mask_painted_rules():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)))
    im = st.images[0]
    st.set_tags(0, 1, "absence")
    st.set_tags(0, 2, "presence")
    st.confirm_empty(0, 2)
    # unknown slice painted -> presence, annotated
    assert paint(st, 0, 0) == []
    assert im.tags[0] == P and im.annotated()[0]
    # absence slice painted -> returned for a warning, tag left alone
    assert paint(st, 0, 1) == [1]
    assert im.tags[1] == A and not im.annotated()[1]
    # a confirmed-empty presence slice painted -> no longer "no lesion", still annotated
    assert paint(st, 0, 2) == []
    assert not im.confirmed_empty[2] and im.annotated()[2]
    # telling about slices without paint changes no tag
    assert st.mask_painted(0, [4, 5]) == []
    assert im.tags[4] == U and im.tags[5] == U
    # undo of the unknown -> presence promotion
    paint(st, 0, 5)
    assert im.tags[5] == P
    st.undo()
    assert im.tags[5] == U


def test_mask_painted_defaults_to_all_slices():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)))
    im = st.images[0]
    st.set_tags(0, 4, "absence")
    im.mask[[1, 3, 4]] = 1
    assert st.mask_painted(0) == [4]
    assert im.tags.tolist() == [U, P, U, P, A, U]


def test_mask_revision_and_content_cache():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)))
    im = st.images[0]
    assert im.mask_revision == 0
    assert not im.has_content().any()
    im.mask[2, 0, 0] = 1
    assert not im.has_content()[2], "cached until mask_changed"
    st.mask_painted(0, 2)
    assert im.has_content()[2] and im.mask_revision == 1


def test_annotated_derivation_and_counts():
    st = Study()
    st.add_image(volume(shape=(6, 8, 10)), name="a")
    st.add_image(volume(shape=(4, 8, 10)), name="b")
    a, b = st.images
    st.set_tags(0, [0, 1, 2], "presence")
    st.set_tags(0, [3, 4], "absence")
    paint(st, 0, 0)
    st.confirm_empty(0, 1)
    # presence without paint or confirmation: not annotated
    assert a.annotated().tolist() == [True, True, False, False, False, False]
    paint(st, 1, 3)
    st.set_tags(1, 0, "absence")
    assert a.counts() == {"slices": 6, "presence": 3, "absence": 2, "unknown": 1, "annotated": 2}
    assert b.counts() == {"slices": 4, "presence": 1, "absence": 1, "unknown": 2, "annotated": 1}
    assert st.counts() == {"images": 2, "slices": 10, "presence": 4, "absence": 3, "unknown": 3, "annotated": 3}


# --- saving and loading ----------------------------------------------------------------------


def test_save_load_exact_round_trip(tmp_path, study2):
    before = snapshot(study2)
    out = save_study(study2, tmp_path / "study")
    assert out == tmp_path / "study"
    assert study2.folder == out and not study2.modified
    assert all_files(out) == {
        "study.json",
        "images/patient_1.nii.gz",
        "images/synthetic.nii.gz",
        f"masks/patient_1.r{study2.images[0].mask_revision}.nii.gz",
        f"masks/synthetic.r{study2.images[1].mask_revision}.nii.gz",
    }
    loaded = load_study(out)
    assert loaded.folder == out and not loaded.modified and not loaded.can_undo
    assert_same(before, snapshot(loaded))
    a0, a1 = study2.images[0].volume, loaded.images[0].volume
    np.testing.assert_array_equal(a1.affine, a0.affine)
    assert a1.header["descrip"] == b"oblique source"
    for key in (
        "qform_code",
        "sform_code",
        "quatern_b",
        "quatern_c",
        "quatern_d",
        "qoffset_x",
        "qoffset_y",
        "qoffset_z",
        "srow_x",
        "srow_y",
        "srow_z",
        "xyzt_units",
        "descrip",
        "datatype",
        "bitpix",
    ):
        np.testing.assert_array_equal(a1.header[key], a0.header[key], err_msg=key)
    np.testing.assert_array_equal(a1.header["pixdim"][1:4], a0.header["pixdim"][1:4])
    assert a1.sources == a0.sources
    assert [Path(s).name for s in a1.sources] == ["t1.nii.gz", "flair.nii.gz"]
    assert loaded.images[0].mask_revision == study2.images[0].mask_revision
    # the synthetic image gets a diagonal affine from its spacing
    np.testing.assert_allclose(loaded.images[1].volume.affine, np.diag([0.5, 1.0, 2.0, 1.0]))
    # the files are plain NIfTI on the source grid
    mask_img = nib.load(str(out / f"masks/patient_1.r{study2.images[0].mask_revision}.nii.gz"))
    np.testing.assert_array_equal(mask_img.affine, nib.load(str(tmp_path / "src" / "t1.nii.gz")).affine)
    assert nib.load(str(out / "images/patient_1.nii.gz")).shape == (10, 8, 6, 2)


def test_manifest_content(tmp_path, study2):
    save_study(study2, tmp_path / "s")
    m = json.loads((tmp_path / "s" / "study.json").read_text())
    assert m["format"] == "napari-weakseg study" and m["schema_version"] == SCHEMA_VERSION == 2
    e0, e1 = m["images"]
    assert e0["name"] == "patient_1" and e0["tags"] == "aapppu" and e0["confirmed_empty"] == [4]
    assert e0["annotated"] == [2, 3, 4] and e0["shape_zyx"] == [6, 8, 10] and e0["slice_axis"] == 0
    assert e0["spacing_zyx"] == pytest.approx([3.0, 0.9, 0.7], abs=1e-6)
    assert e0["channels"] == ["t1", "flair"]
    assert e1["tags"] == "upuuuuuaa" and e1["slice_axis"] == 2 and e1["annotated"] == [1]


def test_resave_writes_only_what_changed_and_collects_garbage(tmp_path, study2, monkeypatch):
    out = save_study(study2, tmp_path / "s")
    old_mask = out / study2._files["patient_1"]["mask"]
    image_bytes = (out / "images/patient_1.nii.gz").read_bytes()
    writes = []
    real = folder_mod.write_nifti
    monkeypatch.setattr(
        folder_mod, "write_nifti", lambda p, *a, **k: (writes.append(Path(p).relative_to(out).as_posix()), real(p, *a, **k))[1]
    )
    # a tag-only edit rewrites no NIfTI
    study2.set_tags(1, 0, "absence")
    assert study2.modified
    save_study(study2)
    assert writes == [] and not study2.modified
    # a mask edit writes one new mask revision and removes the old one
    paint(study2, 0, 3, value=1, where=(slice(5, 6), slice(5, 6)))
    save_study(study2)
    rev = study2.images[0].mask_revision
    assert writes == [f"masks/patient_1.r{rev}.nii.gz"]
    assert not old_mask.exists()
    assert (out / "images/patient_1.nii.gz").read_bytes() == image_bytes
    assert sorted(all_files(out)) == sorted(
        {
            "study.json",
            "images/patient_1.nii.gz",
            "images/synthetic.nii.gz",
            f"masks/patient_1.r{rev}.nii.gz",
            f"masks/synthetic.r{study2.images[1].mask_revision}.nii.gz",
        }
    )
    assert_same(snapshot(study2), snapshot(load_study(out)))


def test_edit_after_load_and_save_again(tmp_path, study2):
    out = save_study(study2, tmp_path / "s")
    st = load_study(out)
    st.set_tags(0, 5, "absence")
    paint(st, 1, 4)
    save_study(st)
    assert_same(snapshot(st), snapshot(load_study(out)))
    assert len(list((out / "masks").iterdir())) == 2


def test_save_as_into_another_folder(tmp_path, study2):
    first = save_study(study2, tmp_path / "one")
    second = save_study(study2, tmp_path / "two")
    assert study2.folder == second
    assert all_files(first) == all_files(second)
    assert_same(snapshot(load_study(first)), snapshot(load_study(second)))


def test_save_needs_a_folder():
    st = Study()
    st.add_image(volume())
    with pytest.raises(InputError, match="the study has no folder yet"):
        save_study(st)


def test_save_refuses_foreign_or_other_study_folders(tmp_path, study2):
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"not mine")
    with pytest.raises(InputError, match="photos: the folder is not empty; choose an empty or new folder"):
        save_study(study2, foreign)
    assert all_files(foreign) == {"holiday.jpg"} and study2.folder is None
    other = Study()
    other.add_image(volume())
    save_study(other, tmp_path / "other")
    before = {p: (tmp_path / "other" / p).read_bytes() for p in all_files(tmp_path / "other")}
    with pytest.raises(InputError, match="already holds another study"):
        save_study(study2, tmp_path / "other")
    assert {p: (tmp_path / "other" / p).read_bytes() for p in all_files(tmp_path / "other")} == before
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(InputError, match="exists and is not a folder"):
        save_study(study2, a_file)
    # an existing empty folder is fine
    (tmp_path / "empty").mkdir()
    save_study(study2, tmp_path / "empty")
    assert (tmp_path / "empty" / "study.json").is_file()


@pytest.mark.parametrize("version", [3, 99])
def test_newer_schema_is_refused(tmp_path, study2, version):
    out = save_study(study2, tmp_path / "s")
    m = json.loads((out / "study.json").read_text())
    m["schema_version"] = version
    m["written_by"] = "napari-weakseg 9.0"
    (out / "study.json").write_text(json.dumps(m))
    (out / "masks" / (atomic.TMP_PREFIX + "x")).write_bytes(b"")
    files = all_files(out)
    with pytest.raises(SchemaVersionError) as info:
        load_study(out)
    msg = str(info.value)
    assert f"study schema {version} was written by a newer napari-weakseg (napari-weakseg 9.0)" in msg
    assert f"reads schema {SCHEMA_VERSION}" in msg and "Upgrade napari-weakseg" in msg
    assert isinstance(info.value, WeaksegError)
    assert all_files(out) == files, "nothing is changed on disk"


@pytest.mark.parametrize("version", [0, None, "1"])
def test_older_or_odd_schema_is_refused(tmp_path, study2, version):
    out = save_study(study2, tmp_path / "s")
    m = json.loads((out / "study.json").read_text())
    m["schema_version"] = version
    (out / "study.json").write_text(json.dumps(m))
    with pytest.raises(SchemaVersionError) as info:
        load_study(out)
    msg = str(info.value)
    assert f"study schema {version!r} is not supported (this version reads schemas 1, 2)" in msg
    assert "newer" not in msg


def test_not_a_study_folder(tmp_path):
    (tmp_path / "plain").mkdir()
    with pytest.raises(InputError, match=r"plain: not a study folder \(no study\.json\)"):
        load_study(tmp_path / "plain")
    with pytest.raises(InputError, match="not a study folder"):
        load_study(tmp_path / "absent")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "study.json").write_text("{ not json")
    with pytest.raises(InputError, match="unreadable manifest"):
        load_study(bad)
    (bad / "study.json").write_text(json.dumps({"format": "something else", "schema_version": 1}))
    with pytest.raises(InputError, match="not a napari-weakseg study manifest"):
        load_study(bad)
    (bad / "study.json").write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="not a napari-weakseg study manifest"):
        load_study(bad)


def test_malformed_manifest(tmp_path, study2):
    out = save_study(study2, tmp_path / "s")
    m = json.loads((out / "study.json").read_text())
    del m["images"][1]["tags"]
    (out / "study.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match=r"malformed manifest \(KeyError"):
        load_study(out)
    m["images"][1]["tags"] = "upx"
    (out / "study.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="malformed manifest"):
        load_study(out)


def test_missing_file_in_study(tmp_path, study2):
    out = save_study(study2, tmp_path / "s")
    mask = out / study2._files["synthetic"]["mask"]
    mask.unlink()
    with pytest.raises(InputError) as info:
        load_study(out)
    assert str(info.value) == f"s: {mask.relative_to(out).as_posix()} is missing; the study folder is incomplete"
    (out / "images/patient_1.nii.gz").unlink()
    with pytest.raises(InputError, match="images/patient_1.nii.gz is missing"):
        load_study(out)


def test_corrupt_file_in_study(tmp_path, study2):
    out = save_study(study2, tmp_path / "s")
    img = out / "images/synthetic.nii.gz"
    img.write_bytes(img.read_bytes()[:200])
    with pytest.raises(InputError, match="synthetic.nii.gz"):
        load_study(out)


def test_stale_temporaries_are_removed_on_load(tmp_path, study2):
    out = save_study(study2, tmp_path / "s")
    stale = [out / (atomic.TMP_PREFIX + "a1"), out / "images" / (atomic.TMP_PREFIX + "b2"), out / "masks" / (atomic.TMP_PREFIX + "c3")]
    for p in stale:
        p.write_bytes(b"half a file")
    before = snapshot(study2)
    loaded = load_study(out)
    assert not any(p.exists() for p in stale)
    assert tmp_files(out) == []
    assert_same(before, snapshot(loaded))


class Boom(OSError):
    pass


def _fail_after(monkeypatch, module, name, n_ok: int, calls: list):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(Path(args[0]).name)
        if len(calls) > n_ok:
            raise Boom("disk full (simulated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def _edit(study: Study):
    study.set_tags(0, [0, 1, 2], "unknown")
    paint(study, 0, 5, where=(slice(0, 4), slice(0, 4)))
    paint(study, 1, 6)
    study.set_tags(1, [1], "absence")


@pytest.mark.parametrize("where,n_ok", [("write_nifti", 0), ("write_nifti", 1), ("write_json_atomic", 0)])
def test_failed_save_leaves_the_previous_study(tmp_path, study2, monkeypatch, where, n_ok):
    out = save_study(study2, tmp_path / "s")
    saved = snapshot(study2)
    manifest = (out / "study.json").read_bytes()
    old_files = all_files(out)
    _edit(study2)
    edited = snapshot(study2)
    calls = []
    _fail_after(monkeypatch, folder_mod, where, n_ok, calls)
    with pytest.raises(Boom):
        save_study(study2)
    assert len(calls) == n_ok + 1
    monkeypatch.undo()
    # the previous study is intact, exactly
    assert (out / "study.json").read_bytes() == manifest
    assert_same(saved, snapshot(load_study(out)))
    assert tmp_files(out) == []
    # whatever the failed save did write is complete and only adds new names
    new_files = all_files(out) - old_files
    assert old_files <= all_files(out)
    for rel in new_files:
        assert rel.startswith("masks/")
        nib.load(str(out / rel)).get_fdata()  # a whole, readable file
    # the study in memory still knows it is not saved; a retry saves it and cleans up
    assert study2.modified
    save_study(study2)
    assert not study2.modified
    assert_same(edited, snapshot(load_study(out)))
    revs = [im.mask_revision for im in study2.images]
    assert sorted(all_files(out)) == sorted(
        {
            "study.json",
            "images/patient_1.nii.gz",
            "images/synthetic.nii.gz",
            f"masks/patient_1.r{revs[0]}.nii.gz",
            f"masks/synthetic.r{revs[1]}.nii.gz",
        }
    )


def test_crash_inside_an_atomic_write_leaves_no_temporary(tmp_path, study2, monkeypatch):
    out = save_study(study2, tmp_path / "s")
    saved = snapshot(study2)
    _edit(study2)
    calls = []
    _fail_after(monkeypatch, atomic.os, "replace", 1, calls)  # the 2nd rename fails: after its data was written
    with pytest.raises(Boom):
        save_study(study2)
    monkeypatch.undo()
    assert len(calls) == 2
    assert tmp_files(out) == []
    assert_same(saved, snapshot(load_study(out)))


def test_failed_first_save_keeps_the_study_unsaved(tmp_path, study2, monkeypatch):
    calls = []
    _fail_after(monkeypatch, folder_mod, "write_json_atomic", 0, calls)
    with pytest.raises(Boom):
        save_study(study2, tmp_path / "new")
    assert study2.folder is None and study2.modified
    assert not (tmp_path / "new" / "study.json").exists()
    assert not (tmp_path / "new").exists()  # a first save removes what it wrote
    with pytest.raises(InputError, match="not a study folder"):
        load_study(tmp_path / "new")
    monkeypatch.undo()
    assert save_study(study2, tmp_path / "new") == tmp_path / "new"  # so the same save can be retried


def test_failed_first_save_into_an_empty_folder_empties_it_again(tmp_path, study2, monkeypatch):
    (tmp_path / "empty").mkdir()
    _fail_after(monkeypatch, folder_mod, "write_json_atomic", 0, [])
    with pytest.raises(Boom):
        save_study(study2, tmp_path / "empty")
    assert (tmp_path / "empty").is_dir() and list((tmp_path / "empty").iterdir()) == []


def test_phantom_study_round_trip(tmp_path, phantom):
    st = Study()
    im = st.add_image(phantom.volume, name="phantom", mask=phantom.mask)
    tags_from_masks(im, phantom.head)
    np.testing.assert_array_equal(im.tags, phantom.tags)
    before = snapshot(st)
    out = save_study(st, tmp_path / "ph")
    assert_same(before, snapshot(load_study(out)))


# --- build helpers -------------------------------------------------------------------------------


def test_tags_from_masks_without_roi():
    st = Study()
    m = np.zeros((6, 8, 10), np.uint8)
    m[[1, 4], 3, 3] = 1
    im = st.add_image(volume(), mask=m)
    im.confirmed_empty[:] = True
    tags_from_masks(im)
    assert im.tags.tolist() == [A, P, A, A, P, A]
    assert not im.confirmed_empty.any()
    assert im.annotated().tolist() == [False, True, False, False, True, False]


def test_tags_from_masks_with_roi():
    st = Study()
    m = np.zeros((6, 8, 10), np.uint8)
    m[1, 3, 3] = 1
    m[5, 0, 0] = 1  # a lesion outside the ROI still makes a presence slice
    roi = np.zeros((6, 8, 10), np.uint8)
    roi[1:4] = 1
    im = st.add_image(volume(), mask=m)
    tags_from_masks(im, roi)
    assert im.tags.tolist() == [U, P, A, A, U, P]
    with pytest.raises(InputError, match=r"ROI shape \(6, 8, 9\) does not match the image shape \(6, 8, 10\)"):
        tags_from_masks(im, np.ones((6, 8, 9)))


def test_tags_from_masks_along_another_axis():
    st = Study()
    m = np.zeros((6, 8, 10), np.uint8)
    m[0, 2, 7] = 1
    roi = np.zeros((6, 8, 10), bool)
    roi[:, 1:5, :] = True
    im = st.add_image(volume(), mask=m, axis=1)
    tags_from_masks(im, roi)
    assert im.tags.tolist() == [U, A, P, A, A, U, U, U]


@pytest.mark.parametrize(
    "text,value",
    [("0.1", 0.1), ("10%", 0.1), (" 25% ", 0.25), ("1e-1", 0.1), ("1.0", 1.0), ("0", 0), ("3", 3), ("0.0", 0.0), ("100%", 1.0)],
)
def test_parse_amount(text, value):
    got = parse_amount(text)
    assert got == pytest.approx(value)
    assert type(got) is type(value)


@pytest.mark.parametrize(
    "text,why",
    [
        ("-1", "give a fraction"),
        ("abc", "give a fraction"),
        ("", "give a fraction"),
        ("1.5", "between 0 and 1"),
        ("150%", "between 0 and 1"),
        ("-0.5", "between 0 and 1"),
        ("x%", "give a fraction"),
    ],
)
def test_parse_amount_refuses(text, why):
    with pytest.raises(InputError) as info:
        parse_amount(text)
    assert why in str(info.value) and f"--keep-masks {text.strip()!r}" in str(info.value)


def annotated_study() -> Study:
    """Two images: 6 + 4 annotated presence slices (one of them confirmed empty), plus untouched slices."""
    st = Study()
    m1 = np.zeros((10, 8, 8), np.uint8)
    for s in range(6):
        m1[s, s, 1 : 2 + s] = 1
    m2 = np.zeros((7, 8, 8), np.uint8)
    for s in (1, 2, 4):
        m2[s, 2, 2 : 3 + s] = 2
    st.add_image(volume(shape=(10, 8, 8), seed=1), name="a", mask=m1)
    st.add_image(volume(shape=(7, 8, 8), seed=2), name="b", mask=m2)
    tags_from_masks(st.images[0])
    tags_from_masks(st.images[1])
    st.set_tags("b", 5, "presence")
    st.confirm_empty("b", 5)
    assert st.counts()["annotated"] == 10
    return st


def kept_units(st: Study) -> set[tuple[int, int]]:
    return {(i, int(s)) for i, im in enumerate(st.images) for s in np.flatnonzero(im.annotated())}


def test_keep_masks_per_slice_fraction():
    st = annotated_study()
    orig_masks = [im.mask.copy() for im in st.images]
    orig_tags = [im.tags.copy() for im in st.images]
    before = kept_units(st)
    n = keep_masks(st, 0.5, "slice", seed=1)
    assert n == 5 == st.counts()["annotated"]
    kept = kept_units(st)
    assert kept < before
    for i, im in enumerate(st.images):
        np.testing.assert_array_equal(im.tags, orig_tags[i])  # tags unchanged
        for s in range(im.n_slices):
            if (i, s) in kept:
                np.testing.assert_array_equal(im.mask[s], orig_masks[i][s])
            else:
                assert not im.mask[s].any()
                assert not im.confirmed_empty[s]
    # deterministic by seed
    again = annotated_study()
    keep_masks(again, 0.5, "slice", seed=1)
    assert kept_units(again) == kept
    for a, b in zip(st.images, again.images, strict=False):
        np.testing.assert_array_equal(a.mask, b.mask)
    others = set()
    for seed in range(2, 8):
        s = annotated_study()
        keep_masks(s, 0.5, "slice", seed=seed)
        others.add(frozenset(kept_units(s)))
    assert len(others) > 1, "the seed matters"


@pytest.mark.parametrize("amount,expected", [(3, 3), (0, 0), (0.01, 1), (1.0, 10), (50, 10), (0.25, 2)])
def test_keep_masks_per_slice_counts(amount, expected):
    st = annotated_study()
    assert keep_masks(st, amount, "slice", seed=0) == expected
    assert st.counts()["annotated"] == expected
    assert sum(int(im.has_content().sum()) for im in st.images) + sum(int(im.confirmed_empty.sum()) for im in st.images) == expected


def test_keep_masks_per_volume():
    st = annotated_study()
    orig = [im.mask.copy() for im in st.images]
    orig_tags = [im.tags.copy() for im in st.images]
    n = keep_masks(st, 1, "volume", seed=1)
    kept_images = [i for i, im in enumerate(st.images) if im.annotated().any()]
    assert len(kept_images) == 1
    k = kept_images[0]
    assert n == [6, 4][k]
    np.testing.assert_array_equal(st.images[k].mask, orig[k])
    other = 1 - k
    assert not st.images[other].mask.any() and not st.images[other].confirmed_empty.any()
    for i, im in enumerate(st.images):
        np.testing.assert_array_equal(im.tags, orig_tags[i])
    again = annotated_study()
    keep_masks(again, 1, "volume", seed=1)
    assert [im.annotated().any() for im in again.images] == [im.annotated().any() for im in st.images]
    picks = set()
    for seed in range(8):
        s = annotated_study()
        keep_masks(s, 1, "volume", seed=seed)
        picks.add(tuple(im.annotated().any() for im in s.images))
    assert picks == {(True, False), (False, True)}
    both = annotated_study()
    assert keep_masks(both, 1.0, "volume") == 10


def test_keep_masks_bumps_revision_and_refuses_bad_unit():
    st = annotated_study()
    revs = [im.mask_revision for im in st.images]
    keep_masks(st, 2, "slice")
    assert all(im.mask_revision > r for im, r in zip(st.images, revs, strict=False))
    with pytest.raises(InputError, match="--per must be 'slice', 'half' or 'volume', not 'case'"):
        keep_masks(st, 1, "case")
    empty = Study()
    empty.add_image(volume())
    assert keep_masks(empty, 0.5) == 0


def test_the_manifest_says_whether_an_image_knows_its_anatomy(tmp_path):
    """Views are upright only for images with an orientation: a NIfTI file's, not an image folder's or a
    synthetic one's, although the study's own copy of those is a NIfTI file too."""
    from napari_weakseg.io.orientation import is_oriented

    study = Study()
    study.add_image(volume(), name="synthetic")
    study.add_image(load_case([oblique_nifti(tmp_path / "scan.nii.gz")]), name="scan")
    save_study(study, tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "study.json").read_text())
    assert [e["oriented"] for e in manifest["images"]] == [False, True]
    assert [is_oriented(im.volume) for im in load_study(tmp_path / "s").images] == [False, True]
    # a manifest from before the field: only images from NIfTI sources count as oriented
    for e in manifest["images"]:
        del e["oriented"]
    manifest["images"][0]["sources"] = [str(tmp_path / "an image folder")]
    (tmp_path / "s" / "study.json").write_text(json.dumps(manifest))
    assert [is_oriented(im.volume) for im in load_study(tmp_path / "s").images] == [False, True]
    manifest["images"][1]["oriented"] = "yes"
    (tmp_path / "s" / "study.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="oriented must be true or false"):
        load_study(tmp_path / "s")
