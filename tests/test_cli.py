"""The ``weakseg`` command, run in-process (and once as a real process)."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

import napari_weakseg
import napari_weakseg.study.folder as folder_mod
from napari_weakseg.cli import main
from napari_weakseg.study import Tag, load_study

P, A, U = Tag.PRESENCE, Tag.ABSENCE, Tag.UNKNOWN
IJK = (12, 10, 8)  # NIfTI shape; napari order (Z, Y, X) = (8, 10, 12): 8 slices along axis 0


def affine(shift=0.0) -> np.ndarray:
    t = np.deg2rad(-14.0)
    aff = np.eye(4)
    aff[:3, :3] = np.array([[np.cos(t), 0, np.sin(t)], [0, 1, 0], [-np.sin(t), 0, np.cos(t)]]) @ np.diag([0.9, 1.2, 2.5])
    aff[:3, 3] = [-60.0 + shift, 20.5, -7.25]
    return aff


def save(path: Path, arr: np.ndarray, aff=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(arr, affine() if aff is None else aff)
    img.set_qform(img.affine, 1)
    img.set_sform(img.affine, 1)
    nib.save(img, str(path))
    return path


def lesion_mask(slices) -> np.ndarray:
    m = np.zeros(IJK, np.uint8)
    for k in slices:
        m[3:6, 4:6, k] = 1
    return m


@pytest.fixture
def data(tmp_path):
    """Two BraTS-like cases (same file names in two folders), two channels each, masks and a ROI."""
    rng = np.random.default_rng(0)
    d = {}
    for case, slices in (("pat1", (2, 3, 5)), ("pat2", (1, 4, 6))):
        base = tmp_path / "data" / case
        d[case] = {
            "flair": save(base / "flair.nii.gz", rng.random(IJK).astype(np.float32)),
            "t1c": save(base / "t1c.nii", rng.random(IJK).astype(np.float32)),
            "mask": save(base / "truth.nii.gz", lesion_mask(slices)),
            "slices": slices,
        }
    roi = np.zeros(IJK, np.uint8)
    roi[..., 1:7] = 1  # slices 1..6 hold brain
    d["pat1"]["roi"] = save(tmp_path / "data" / "pat1" / "brainmask.nii.gz", roi)
    return d


def run(capsys, *argv) -> tuple[int, str, str]:
    """Run ``weakseg argv`` in-process; returns (exit code, stdout, stderr). Exceptions other
    than SystemExit propagate, so an uncaught error fails the test instead of passing silently."""
    saved = warnings.showwarning  # main() installs its one-line warning printer
    try:
        rc = main([str(a) for a in argv])
    except SystemExit as exc:
        rc = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        warnings.showwarning = saved
    out, err = capsys.readouterr()
    return rc, out, err


def table(out: str) -> dict[str, dict[str, int]]:
    lines = [ln.split() for ln in out.strip().splitlines()]
    header = lines[0]
    assert header == ["image", "slices", "presence", "absence", "unknown", "annotated"]
    return {row[0]: dict(zip(header[1:], map(int, row[1:]), strict=False)) for row in lines[1:]}


def assert_one_line_error(rc: int, err: str, *parts: str, code: int = 1) -> str:
    assert rc == code
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    errors = [ln for ln in lines if "error:" in ln]
    assert len(errors) == 1, err
    assert lines[-1] == errors[0]
    assert errors[0].startswith("weakseg: error: "), errors[0]
    # the only other lines are progress ("added ...") and one-line warnings: no usage dump
    assert all(ln.startswith(("added ", "weakseg: warning: ")) for ln in lines[:-1]), err
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


def channels(case: dict) -> str:
    return f"{case['flair']},{case['t1c']}"


def tags_str(im) -> str:
    return "".join(Tag(t).char for t in im.tags)


# --- happy paths ----------------------------------------------------------------------------


def test_version_in_process(capsys):
    rc, out, err = run(capsys, "--version")
    assert rc == 0
    assert out.strip() == f"napari-weakseg {napari_weakseg.__version__}"


def test_version_as_a_process():
    res = subprocess.run([sys.executable, "-m", "napari_weakseg.cli", "--version"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == f"napari-weakseg {napari_weakseg.__version__}"
    script = Path(sys.executable).parent / "weakseg"
    if script.exists():  # the installed console script
        res = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0 and res.stdout.strip() == f"napari-weakseg {napari_weakseg.__version__}"


def test_no_command_prints_help(capsys):
    rc, out, _ = run(capsys)
    assert rc == 2 and "study" in out


def test_create_with_tags_from_masks_and_roi(tmp_path, data, capsys):
    out_dir = tmp_path / "study"
    rc, out, err = run(
        capsys,
        "study",
        "create",
        out_dir,
        "--image",
        channels(data["pat1"]),
        "--mask",
        data["pat1"]["mask"],
        "--roi-mask",
        data["pat1"]["roi"],
        "--image",
        channels(data["pat2"]),
        "--mask",
        data["pat2"]["mask"],
        "--tags-from-masks",
    )
    assert rc == 0, err
    assert "Traceback" not in err and "error" not in err
    # same file names in two folders: the cases are named after their folders
    assert "added pat1: 2 channel(s), shape (8, 10, 12)" in err
    assert "added pat2: 2 channel(s), shape (8, 10, 12)" in err
    assert f"study written to {out_dir}" in err
    t = table(out)
    assert t["pat1"] == {"slices": 8, "presence": 3, "absence": 3, "unknown": 2, "annotated": 3}
    assert t["pat2"] == {"slices": 8, "presence": 3, "absence": 5, "unknown": 0, "annotated": 3}
    assert t["total"] == {"slices": 16, "presence": 6, "absence": 8, "unknown": 2, "annotated": 6}

    st = load_study(out_dir)
    a, b = st.images
    assert (a.name, b.name) == ("pat1", "pat2")
    assert tags_str(a) == "uappapau" and tags_str(b) == "apaapapa"
    assert a.volume.channel_names == ["flair", "t1c"]
    assert a.volume.data.shape == (2, 8, 10, 12)
    np.testing.assert_array_equal(a.volume.data[0], nib.load(str(data["pat1"]["flair"])).get_fdata(dtype=np.float32).T)
    np.testing.assert_array_equal(a.volume.data[1], nib.load(str(data["pat1"]["t1c"])).get_fdata(dtype=np.float32).T)
    np.testing.assert_array_equal(a.mask, lesion_mask((2, 3, 5)).T)
    np.testing.assert_array_equal(b.mask, lesion_mask((1, 4, 6)).T)
    np.testing.assert_array_equal(a.volume.affine, nib.load(str(data["pat1"]["flair"])).affine)


def test_create_masks_without_tags_from_masks(tmp_path, data, capsys):
    out_dir = tmp_path / "s"
    rc, out, err = run(
        capsys, "study", "create", out_dir, "--image", data["pat1"]["flair"], "--mask", data["pat1"]["mask"], "--name", "first case"
    )
    assert rc == 0, err
    st = load_study(out_dir)
    assert st.images[0].name == "first_case"
    assert tags_str(st.images[0]) == "uuppupuu"  # painted slices presence + annotated, others unknown
    assert table(out)["first_case"] == {"slices": 8, "presence": 3, "absence": 0, "unknown": 5, "annotated": 3}
    assert "total" not in table(out)


def test_create_without_masks_and_other_axis(tmp_path, data, capsys):
    out_dir = tmp_path / "s"
    rc, out, err = run(capsys, "study", "create", out_dir, "--image", data["pat1"]["flair"], "--axis", "2")
    assert rc == 0, err
    assert table(out)["flair"] == {"slices": 12, "presence": 0, "absence": 0, "unknown": 12, "annotated": 0}
    assert load_study(out_dir).images[0].axis == 2


def test_create_slices_the_anatomical_plane_whatever_the_storage(tmp_path, capsys):
    """--plane (axial by default) picks the slicing axis from the affine: a scan stored with S-I as its j axis
    slices along napari axis 1; --plane sagittal along the axis closest to left-right."""
    aff = np.array([[0, 0, 1.0, 0], [-1.0, 0, 0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1]])  # i: P, j: S, k: R (PSR)
    img = save(tmp_path / "psr.nii.gz", np.random.default_rng(0).random((6, 7, 8)).astype(np.float32), aff)
    for plane, axis in (("axial", 1), ("sagittal", 0), ("coronal", 2)):
        rc, _, err = run(capsys, "study", "create", tmp_path / plane, "--image", img, *(["--plane", plane] if plane != "axial" else []))
        assert rc == 0, err
        assert load_study(tmp_path / plane).images[0].axis == axis, plane


def test_keep_masks_per_slice(tmp_path, data, capsys):
    args = [
        "--image",
        channels(data["pat1"]),
        "--mask",
        data["pat1"]["mask"],
        "--roi-mask",
        data["pat1"]["roi"],
        "--image",
        channels(data["pat2"]),
        "--mask",
        data["pat2"]["mask"],
        "--tags-from-masks",
        "--keep-masks",
        "0.5",
        "--per",
        "slice",
        "--seed",
        "1",
    ]
    rc, out, err = run(capsys, "study", "create", tmp_path / "s1", *args)
    assert rc == 0, err
    t = table(out)
    assert t["total"]["annotated"] == 3  # half of the 6 annotated slices
    assert t["total"]["presence"] == 6 and t["total"]["absence"] == 8  # tags stay
    st = load_study(tmp_path / "s1")
    assert sum(int(im.has_content().sum()) for im in st.images) == 3
    for im, case in zip(st.images, ("pat1", "pat2"), strict=False):
        full = lesion_mask(data[case]["slices"]).T
        for s in range(im.n_slices):
            if im.has_content()[s]:
                np.testing.assert_array_equal(im.mask[s], full[s])  # kept slices keep their whole mask
    # same seed, same draw; the output table is identical
    rc, out2, _ = run(capsys, "study", "create", tmp_path / "s2", *args)
    assert rc == 0 and out2 == out
    st2 = load_study(tmp_path / "s2")
    for a, b in zip(st.images, st2.images, strict=False):
        np.testing.assert_array_equal(a.mask, b.mask)
    # and a show of the saved study prints the same table
    rc, out3, _ = run(capsys, "study", "show", tmp_path / "s1")
    assert rc == 0 and out3 == out


def test_keep_masks_per_volume(tmp_path, data, capsys):
    rc, out, err = run(
        capsys,
        "study",
        "create",
        tmp_path / "s",
        "--image",
        channels(data["pat1"]),
        "--mask",
        data["pat1"]["mask"],
        "--image",
        channels(data["pat2"]),
        "--mask",
        data["pat2"]["mask"],
        "--tags-from-masks",
        "--keep-masks",
        "1",
        "--per",
        "volume",
    )
    assert rc == 0, err
    t = table(out)
    assert sorted([t["pat1"]["annotated"], t["pat2"]["annotated"]]) == [0, 3]
    assert t["total"]["annotated"] == 3 and t["total"]["presence"] == 6
    st = load_study(tmp_path / "s")
    kept = [im for im in st.images if im.mask.any()]
    assert len(kept) == 1
    np.testing.assert_array_equal(kept[0].mask, lesion_mask(data[kept[0].name]["slices"]).T)


def test_show(tmp_path, data, capsys):
    run(
        capsys,
        "study",
        "create",
        tmp_path / "s",
        "--image",
        data["pat1"]["flair"],
        "--mask",
        data["pat1"]["mask"],
        "--image",
        data["pat2"]["t1c"],
        "--mask",
        data["pat2"]["mask"],
        "--tags-from-masks",
    )
    rc, out, err = run(capsys, "study", "show", tmp_path / "s")
    assert rc == 0 and err == ""
    t = table(out)
    assert t["flair"] == {"slices": 8, "presence": 3, "absence": 5, "unknown": 0, "annotated": 3}
    assert t["t1c"] == {"slices": 8, "presence": 3, "absence": 5, "unknown": 0, "annotated": 3}
    assert t["total"] == {"slices": 16, "presence": 6, "absence": 10, "unknown": 0, "annotated": 6}


# --- errors ---------------------------------------------------------------------------------


def test_missing_file(tmp_path, data, capsys):
    out_dir = tmp_path / "s"
    rc, _, err = run(capsys, "study", "create", out_dir, "--image", tmp_path / "nowhere" / "flair.nii.gz")
    assert_one_line_error(rc, err, "flair.nii.gz", "no such file")
    assert not out_dir.exists()


def test_missing_mask_file(tmp_path, data, capsys):
    out_dir = tmp_path / "s"
    rc, _, err = run(capsys, "study", "create", out_dir, "--image", data["pat1"]["flair"], "--mask", tmp_path / "gone_mask.nii.gz")
    assert_one_line_error(rc, err, "gone_mask.nii.gz", "no such file")
    assert not out_dir.exists()


def test_mask_shape_mismatch(tmp_path, data, capsys):
    small = save(tmp_path / "small_mask.nii.gz", np.zeros((12, 10, 7), np.uint8))
    out_dir = tmp_path / "s"
    rc, _, err = run(
        capsys,
        "study",
        "create",
        out_dir,
        "--image",
        data["pat1"]["flair"],
        "--mask",
        data["pat1"]["mask"],
        "--image",
        data["pat2"]["flair"],
        "--mask",
        small,
    )
    line = assert_one_line_error(rc, err, "small_mask.nii.gz", "mask shape (7, 10, 12) does not match the image shape (8, 10, 12)")
    assert line == "weakseg: error: small_mask.nii.gz: mask shape (7, 10, 12) does not match the image shape (8, 10, 12)"
    assert not out_dir.exists()


def test_mask_before_image(tmp_path, data, capsys):
    out_dir = tmp_path / "s"
    rc, _, err = run(capsys, "study", "create", out_dir, "--mask", data["pat1"]["mask"], "--image", data["pat1"]["flair"])
    assert_one_line_error(rc, err, "--mask must come after the --image it belongs to", code=2)
    assert not out_dir.exists()


def test_option_given_twice_for_one_image(tmp_path, data, capsys):
    rc, _, err = run(
        capsys,
        "study",
        "create",
        tmp_path / "s",
        "--image",
        data["pat1"]["flair"],
        "--mask",
        data["pat1"]["mask"],
        "--mask",
        data["pat1"]["mask"],
    )
    assert_one_line_error(rc, err, "--mask given twice for the same --image", code=2)


def test_missing_image_option(tmp_path, capsys):
    rc, _, err = run(capsys, "study", "create", tmp_path / "s")
    assert_one_line_error(rc, err, "--image", code=2)
    assert not (tmp_path / "s").exists()


def test_non_empty_out_folder(tmp_path, data, capsys):
    out_dir = tmp_path / "busy"
    out_dir.mkdir()
    (out_dir / "keep.txt").write_text("mine")
    rc, _, err = run(capsys, "study", "create", out_dir, "--image", data["pat1"]["flair"])
    assert_one_line_error(rc, err, "busy: the folder is not empty")
    assert sorted(p.name for p in out_dir.iterdir()) == ["keep.txt"]
    assert (out_dir / "keep.txt").read_text() == "mine"


def test_out_folder_holds_a_study(tmp_path, data, capsys):
    out_dir = tmp_path / "s"
    assert run(capsys, "study", "create", out_dir, "--image", data["pat1"]["flair"])[0] == 0
    manifest = (out_dir / "study.json").read_bytes()
    rc, _, err = run(capsys, "study", "create", out_dir, "--image", data["pat2"]["flair"])
    assert_one_line_error(rc, err, "already holds another study")
    assert (out_dir / "study.json").read_bytes() == manifest


def test_unreadable_file(tmp_path, data, capsys):
    fake = tmp_path / "fake.nii.gz"
    fake.write_text("not a nifti\n")
    rc, _, err = run(capsys, "study", "create", tmp_path / "s", "--image", fake)
    assert_one_line_error(rc, err, "fake.nii.gz: not a readable NIfTI file")
    assert not (tmp_path / "s").exists()
    raw = Path(data["pat1"]["flair"]).read_bytes()
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(raw[: len(raw) // 2])
    rc, _, err = run(capsys, "study", "create", tmp_path / "s", "--image", cut)
    assert_one_line_error(rc, err, "cut.nii.gz")
    assert not (tmp_path / "s").exists()


def test_unregistered_channels(tmp_path, data, capsys):
    moved = save(tmp_path / "moved.nii.gz", np.zeros(IJK, np.float32), affine(shift=5.0))
    rc, _, err = run(capsys, "study", "create", tmp_path / "s", "--image", f"{data['pat1']['flair']},{moved}")
    assert_one_line_error(rc, err, "moved.nii.gz: its affine differs from flair.nii.gz")
    assert not (tmp_path / "s").exists()


def test_bad_keep_masks_and_tags_without_mask(tmp_path, data, capsys):
    rc, _, err = run(
        capsys, "study", "create", tmp_path / "s", "--image", data["pat1"]["flair"], "--mask", data["pat1"]["mask"], "--keep-masks", "lots"
    )
    assert_one_line_error(rc, err, "--keep-masks 'lots': give a fraction (0.1, 10%) or a count (3)")
    rc, _, err = run(capsys, "study", "create", tmp_path / "s", "--image", data["pat1"]["flair"], "--tags-from-masks")
    assert_one_line_error(rc, err, "--tags-from-masks: image flair has no --mask")
    rc, _, err = run(capsys, "study", "create", tmp_path / "s", "--image", data["pat1"]["flair"], "--per", "case")
    assert_one_line_error(rc, err, "--per", code=2)
    assert not (tmp_path / "s").exists()


def test_show_errors(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    rc, out, err = run(capsys, "study", "show", tmp_path / "plain")
    assert_one_line_error(rc, err, "not a study folder (no study.json)")
    assert out == ""
    (tmp_path / "newer").mkdir()
    (tmp_path / "newer" / "study.json").write_text(
        '{"format": "napari-weakseg study", "schema_version": 7, "written_by": "napari-weakseg 3.0", "images": []}'
    )
    rc, _, err = run(capsys, "study", "show", tmp_path / "newer")
    assert_one_line_error(rc, err, "written by a newer napari-weakseg", "Upgrade napari-weakseg")


def test_out_path_inside_a_file(tmp_path, data, capsys):
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    rc, _, err = run(capsys, "study", "create", blocker / "study", "--image", data["pat1"]["flair"])
    assert_one_line_error(rc, err, "file.txt")
    assert blocker.read_text() == "x"


def test_failure_while_saving_leaves_no_half_written_study(tmp_path, data, capsys, monkeypatch):
    real = folder_mod.write_nifti
    calls = []

    def failing(path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(folder_mod, "write_nifti", failing)
    out_dir = tmp_path / "s"
    rc, _, err = run(
        capsys,
        "study",
        "create",
        out_dir,
        "--image",
        data["pat1"]["flair"],
        "--mask",
        data["pat1"]["mask"],
        "--image",
        data["pat2"]["flair"],
        "--mask",
        data["pat2"]["mask"],
    )
    assert_one_line_error(rc, err, "No space left on device")
    assert len(calls) == 3
    assert not out_dir.exists(), "a half-written study folder was left behind"
    # an empty folder given by the user is left, empty
    out_dir.mkdir()
    calls.clear()
    rc, _, err = run(
        capsys,
        "study",
        "create",
        out_dir,
        "--image",
        data["pat1"]["flair"],
        "--mask",
        data["pat1"]["mask"],
        "--image",
        data["pat2"]["flair"],
        "--mask",
        data["pat2"]["mask"],
    )
    assert_one_line_error(rc, err, "No space left on device")
    assert out_dir.is_dir() and list(out_dir.iterdir()) == []
    # and the same command works once the disk has room again
    monkeypatch.undo()
    rc, out, err = run(
        capsys,
        "study",
        "create",
        out_dir,
        "--image",
        data["pat1"]["flair"],
        "--mask",
        data["pat1"]["mask"],
        "--image",
        data["pat2"]["flair"],
        "--mask",
        data["pat2"]["mask"],
    )
    assert rc == 0, err
    assert len(load_study(out_dir).images) == 2


def test_warnings_are_one_line(tmp_path, data, capsys):
    nan = np.random.default_rng(1).random(IJK).astype(np.float32)
    nan[0, 0, 0] = np.nan
    path = save(tmp_path / "nan.nii.gz", nan)
    rc, _, err = run(capsys, "study", "create", tmp_path / "s", "--image", path)
    assert rc == 0, err
    assert "weakseg: warning: nan.nii.gz: 1 NaN/Inf voxel(s) replaced by 0" in err.splitlines()
