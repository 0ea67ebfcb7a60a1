"""``weakseg train`` / ``predict`` / ``evaluate`` end to end on the phantom written as NIfTI files, and on a
folder of 2D images; bad input is one 'weakseg: error:' line and exit 1."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg.cli import main
from napari_weakseg.data import make_phantom
from napari_weakseg.io.nifti import write_nifti
from napari_weakseg.study import load_study

TINY = {
    "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4},
    "input_size": 32,
    "batch_size": 2,
    "disc_base": 4,
}
AFFINE = np.array([[1.5, 0, 0, -20.0], [0, 1.25, 0, 10.0], [0, 0, 3.0, -5.5], [0, 0, 0, 1]])


def cli(*argv) -> tuple[int, str, str]:
    """Run ``weakseg argv`` in-process; (exit code, stdout, stderr). Other exceptions propagate."""
    out, err = io.StringIO(), io.StringIO()
    saved = warnings.showwarning
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                rc = main([str(a) for a in argv])
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 1
    finally:
        warnings.showwarning = saved
    return rc, out.getvalue(), err.getvalue()


def assert_one_line_error(result, *parts: str) -> str:
    rc, _, err = result
    assert rc == 1, err
    assert "Traceback" not in err
    errors = [ln for ln in err.strip().splitlines() if "error:" in ln]
    assert len(errors) == 1, err
    assert errors[0].startswith("weakseg: error: ") and err.strip().splitlines()[-1] == errors[0], err
    for part in parts:
        assert part in errors[0], errors[0]
    return errors[0]


def assert_ok(result):
    rc, _, err = result
    assert rc == 0, err
    assert "error" not in err and "Traceback" not in err
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def data(work) -> dict:
    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    d = work / "data"
    paths = {
        "image": write_nifti(d / "flair.nii.gz", case.volume.data[0], affine=AFFINE),
        "mask": write_nifti(d / "truth.nii.gz", case.mask, affine=AFFINE),
        "head": write_nifti(d / "head.nii.gz", case.head.astype(np.uint8), affine=AFFINE),
    }
    cfg = work / "tiny.json"
    cfg.write_text(json.dumps(TINY))
    return {**paths, "config": cfg, "case": case}


@pytest.fixture(scope="module")
def study(work, data) -> Path:
    out = work / "study"
    assert_ok(
        cli("study", "create", out, "--image", data["image"], "--mask", data["mask"], "--roi-mask", data["head"], "--tags-from-masks")
    )
    c = load_study(out).counts()
    assert c["presence"] == 4 and c["absence"] == 4 and c["unknown"] == 4 and c["annotated"] == 4
    return out


@pytest.fixture(scope="module")
def seg_run(work, study, data) -> Path:
    run = work / "seg-run"
    rc, _, err = assert_ok(
        cli("train", study, "--method", "seg-only", "--out", run, "--steps", "3", "--config", data["config"], "--device", "cpu")
    )
    assert "completed at step 3" in err
    assert " 0 validation slices" in err  # 4 masks: below 10, all of them train (the dock's rule too)
    return run


def test_val_fraction_when_given(study, data, tmp_path):
    _, _, err = assert_ok(
        cli(
            "train",
            study,
            "--method",
            "seg-only",
            "--out",
            tmp_path / "run",
            "--steps",
            "1",
            "--config",
            data["config"],
            "--device",
            "cpu",
            "--val-fraction",
            "0.5",
        )
    )
    assert " 2 validation slices" in err  # half of the 4 masks


def test_train_predict_evaluate(seg_run, data, tmp_path):
    assert {p.name for p in seg_run.iterdir()} == {"run.json", "metrics.jsonl", "last.pt", "best.pt", "train.log"}
    info = json.loads((seg_run / "run.json").read_text())
    assert info["method"] == "seg-only" and info["method_config"]["net"]["base"] == 4 and info["method_config"]["input_size"] == 32
    events = [json.loads(line)["event"] for line in (seg_run / "metrics.jsonl").read_text().splitlines()]
    assert events[0] == "started" and events[-1] == "finished" and events.count("progress") == 3

    out = tmp_path / "pred"
    _, _, err = assert_ok(cli("predict", seg_run, data["image"], "--out", out, "--device", "cpu"))
    assert "wrote 2 file(s)" in err
    assert {p.name for p in out.iterdir()} == {"flair_seg.nii.gz", "flair_prob.nii.gz"}
    src = nib.load(str(data["image"]))
    for name in ("flair_seg.nii.gz", "flair_prob.nii.gz"):
        img = nib.load(str(out / name))
        assert img.shape == src.shape
        np.testing.assert_array_equal(img.affine, src.affine)
        np.testing.assert_array_equal(img.affine, AFFINE)
    seg = np.asarray(nib.load(str(out / "flair_seg.nii.gz")).dataobj)
    prob = nib.load(str(out / "flair_prob.nii.gz")).get_fdata()
    assert set(np.unique(seg)) <= {0, 1}
    assert prob.min() >= 0 and prob.max() <= 1
    np.testing.assert_array_equal(seg, (prob >= 0.5).astype(seg.dtype))

    _, stdout, _ = assert_ok(cli("evaluate", out / "flair_seg.nii.gz", data["mask"], "--json"))
    result = json.loads(stdout)
    assert result["cases"][0]["truth_voxels"] == int(data["case"].mask.sum())
    assert result["cases"][0]["pred_voxels"] == int(seg.sum())
    assert 0 <= result["pooled_dice"] <= 1
    _, stdout, _ = assert_ok(cli("evaluate", out / "flair_seg.nii.gz", data["mask"]))
    assert "pooled dice" in stdout


def test_genseg_predict_writes_healthy_and_residual(work, study, data, tmp_path):
    run = tmp_path / "genseg-run"
    assert_ok(cli("train", study, "--method", "genseg", "--out", run, "--steps", "2", "--config", data["config"], "--device", "cpu"))
    out = tmp_path / "pred"
    assert_ok(cli("predict", run, data["image"], "--out", out, "--name", "case1", "--device", "cpu", "--which", "last"))
    names = {"case1_seg.nii.gz", "case1_prob.nii.gz", "case1_healthy.nii.gz", "case1_residual.nii.gz"}
    assert {p.name for p in out.iterdir()} == names
    src = nib.load(str(data["image"]))
    for name in names:
        img = nib.load(str(out / name))
        assert img.shape == src.shape  # one channel: 3D files
        np.testing.assert_array_equal(img.affine, src.affine)
    healthy = nib.load(str(out / "case1_healthy.nii.gz")).get_fdata()
    assert np.isfinite(healthy).all()


def test_resume_through_the_cli(seg_run, study, data, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(seg_run, run)
    _, _, err = assert_ok(
        cli("train", study, "--method", "seg-only", "--out", run, "--steps", "5", "--config", data["config"], "--device", "cpu", "--resume")
    )
    assert "resumed at step 3" in err and "completed at step 5" in err


def test_train_picks_the_docks_working_size_for_the_studys_slices(data, tmp_path):
    """``quick`` without an input size in --config trains 200x200 slices at the dock's 80 (at most 2.5x
    downsampling), not the preset's 64; an input size in --config is kept."""
    case = make_phantom(shape=(6, 200, 200), channels=1, seed=2)
    image = write_nifti(tmp_path / "big.nii.gz", case.volume.data[0], affine=AFFINE)
    mask = write_nifti(tmp_path / "big-truth.nii.gz", case.mask, affine=AFFINE)
    assert_ok(cli("study", "create", tmp_path / "study", "--image", image, "--mask", mask, "--tags-from-masks"))
    study = tmp_path / "study"
    _, _, err = assert_ok(cli("train", study, "--method", "seg-only", "--out", tmp_path / "run", "--steps", "1", "--device", "cpu"))
    assert "working size 80x80 for slices of side 200" in err
    assert json.loads((tmp_path / "run" / "run.json").read_text())["method_config"]["input_size"] == 80
    small = tmp_path / "small.json"
    small.write_text(json.dumps({"input_size": 32}))
    args = ("--steps", "1", "--device", "cpu", "--config", small)
    _, _, err = assert_ok(cli("train", tmp_path / "study", "--method", "seg-only", "--out", tmp_path / "run32", *args))
    assert "working size" not in err
    assert json.loads((tmp_path / "run32" / "run.json").read_text())["method_config"]["input_size"] == 32


def test_unknown_method(study, data, tmp_path):
    assert_one_line_error(cli("train", study, "--method", "unet", "--out", tmp_path / "r", "--steps", "1"), "unknown method", "genseg")
    assert not (tmp_path / "r").exists()


def test_existing_run_needs_resume(seg_run, study, data):
    before = (seg_run / "metrics.jsonl").read_text()
    assert_one_line_error(
        cli("train", study, "--method", "seg-only", "--out", seg_run, "--steps", "1", "--config", data["config"]),
        "already holds a run",
        "--resume",
    )
    assert (seg_run / "metrics.jsonl").read_text() == before


def test_bad_config_file(study, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{lr: 1")
    assert_one_line_error(cli("train", study, "--method", "seg-only", "--out", tmp_path / "r", "--config", bad), "bad.json")
    bad.write_text(json.dumps({"learning_rate": 1}))
    assert_one_line_error(cli("train", study, "--method", "seg-only", "--out", tmp_path / "r2", "--config", bad), "learning_rate")


def test_genseg_needs_absence_slices(data, tmp_path):
    study = tmp_path / "no-absence"
    assert_ok(cli("study", "create", study, "--image", data["image"], "--mask", data["mask"]))  # painted slices only
    assert load_study(study).counts()["absence"] == 0
    assert_one_line_error(
        cli("train", study, "--method", "genseg", "--out", tmp_path / "r", "--steps", "1", "--config", data["config"], "--device", "cpu"),
        "absence",
    )
    # seg-only needs none
    assert_ok(
        cli("train", study, "--method", "seg-only", "--out", tmp_path / "r2", "--steps", "1", "--config", data["config"], "--device", "cpu")
    )


def test_mismatched_channels_at_predict(seg_run, data, tmp_path):
    image = str(data["image"])
    assert_one_line_error(cli("predict", seg_run, f"{image},{image}", "--out", tmp_path / "p", "--device", "cpu"), "channel")
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())


@pytest.mark.parametrize("damage", ["weights", "run.json", "empty", "missing"])
def test_corrupted_run_folder(seg_run, data, tmp_path, damage):
    run = tmp_path / "run"
    if damage == "missing":
        pass
    elif damage == "empty":
        run.mkdir()
    else:
        shutil.copytree(seg_run, run)
        if damage == "weights":
            for name in ("best.pt", "last.pt"):
                (run / name).write_bytes(b"\x80\x04garbage" * 10)
        else:
            (run / "run.json").write_text('{"format": "napari-weakseg run", "method": ')
    assert_one_line_error(cli("predict", run, data["image"], "--out", tmp_path / "p", "--device", "cpu"), str(run.name))


# --- a folder of 2D images ------------------------------------------------------------------


@pytest.fixture(scope="module")
def png_folders(work) -> tuple[Path, Path, dict]:
    from skimage import io as skio

    rng = np.random.default_rng(0)
    imgs, masks = work / "imgs", work / "masks"
    imgs.mkdir()
    masks.mkdir()
    shapes = {}
    for i in range(6):
        h, w = (24, 28) if i == 3 else (32, 32)
        img = rng.integers(40, 90, (h, w)).astype(np.uint8)
        m = np.zeros((h, w), np.uint8)
        if i % 2 == 0:  # lesion on even images
            m[6:14, 8:18] = 255
            img[m > 0] = 200
        skio.imsave(str(imgs / f"img{i}.png"), img, check_contrast=False)
        skio.imsave(str(masks / f"img{i}.png"), m, check_contrast=False)
        shapes[f"img{i}"] = (h, w)
    return imgs, masks, shapes


def test_image_folder_train_predict_evaluate(work, png_folders, data, tmp_path):
    from skimage import io as skio

    imgs, masks, shapes = png_folders
    study = tmp_path / "study2d"
    _, out, _ = cli("study", "create", study, "--image", imgs, "--mask", masks, "--tags-from-masks")
    c = load_study(study).counts()
    assert c["presence"] == 3 and c["absence"] == 3 and c["annotated"] == 3, out
    run = tmp_path / "run2d"
    assert_ok(cli("train", study, "--method", "seg-only", "--out", run, "--steps", "2", "--config", data["config"], "--device", "cpu"))
    pred = tmp_path / "pred2d"
    rc, _, err = cli("predict", run, imgs, "--out", pred, "--device", "cpu")
    assert rc == 0, err
    assert {p.name for p in pred.iterdir()} == {"imgs_seg", "imgs_prob"}
    for kind in ("imgs_seg", "imgs_prob"):
        files = sorted(p.name for p in (pred / kind).iterdir())
        assert files == sorted(f"{stem}.png" for stem in shapes)
        for stem, shape in shapes.items():
            arr = skio.imread(str(pred / kind / f"{stem}.png"))
            assert arr.shape == shape and arr.dtype == np.uint8  # cropped back to each input's own size
            if kind == "imgs_seg":
                assert set(np.unique(arr)) <= {0, 255}
    rc, stdout, err = cli("evaluate", pred / "imgs_seg", masks, "--json")
    assert rc == 0, err
    result = json.loads(stdout)
    assert result["per_slice"] and result["units"] == 6


def test_pseudo_label_train_refine_predict(seg_run, study, data, tmp_path):
    cfg = tmp_path / "pseudo.json"
    cfg.write_text(
        json.dumps(
            {**TINY, "pseudo_label": {"vae_steps": 5, "vae_base": 4, "aux_count": 16, "res_blocks": 1, "rounds": 1, "round_steps": 2}}
        )
    )
    run = tmp_path / "pseudo-run"
    assert_ok(cli("train", study, "--method", "pseudo-label", "--out", run, "--steps", "2", "--config", cfg, "--device", "cpu"))
    _, _, err = assert_ok(cli("refine", run, study, "--which", "last", "--device", "cpu"))
    assert "round 1" in err and (run / "refined.pt").is_file()
    out = tmp_path / "pred"
    assert_ok(cli("predict", run, data["image"], "--out", out, "--which", "refined", "--device", "cpu"))
    assert {p.name for p in out.iterdir()} == {"flair_seg.nii.gz", "flair_prob.nii.gz"}
    assert_one_line_error(cli("refine", seg_run, study, "--device", "cpu"), "pseudo-label run")


def test_a_run_killed_before_its_first_checkpoint_is_started_again_by_the_same_command(study, data, tmp_path):
    run = tmp_path / "killed"
    run.mkdir()
    (run / "run.json").write_text('{"method": "seg-only"}')  # what a kill before the first checkpoint leaves
    (run / "metrics.jsonl").write_text('{"event": "started"}\n')
    code, out, err = cli(
        "train", study, "--method", "seg-only", "--out", run, "--steps", "1", "--config", data["config"], "--device", "cpu"
    )
    assert code == 0 and (run / "last.pt").is_file(), err


def test_predict_refuses_channels_of_another_modality(seg_run, data, tmp_path):
    """The run learnt on flair.nii.gz; the same pixels named t1c.nii.gz are refused unless the user says so."""
    import shutil

    other = tmp_path / "t1c.nii.gz"
    shutil.copy(data["image"], other)
    assert_one_line_error(
        cli("predict", seg_run, other, "--out", tmp_path / "p", "--device", "cpu"), "other modalities", "--channels-as-given"
    )
    assert_ok(cli("predict", seg_run, other, "--out", tmp_path / "p", "--device", "cpu", "--channels-as-given"))


def test_quiet_verbose_and_the_runs_own_log(seg_run, study, data, tmp_path):
    log = (seg_run / "train.log").read_text()  # every run keeps its log, whoever started it
    assert "INFO training seg-only on cpu" in log and "DEBUG step 3/3" in log and "completed at step 3" in log
    rc, out, err = cli("-q", "train", study, "--method", "seg-only", "--out", tmp_path / "q", "--steps", "2", "--config", data["config"])
    assert rc == 0 and out == "" and err == ""  # only warnings and errors
    assert "completed at step 2" in (tmp_path / "q" / "train.log").read_text()
    rc, _, err = cli("-v", "train", study, "--method", "seg-only", "--out", tmp_path / "v", "--steps", "2", "--config", data["config"])
    assert rc == 0 and "checkpoint at step 2" in err  # debug detail


def test_a_failure_inside_the_run_keeps_its_traceback_in_the_log_and_prints_one_line(study, data, tmp_path, monkeypatch):
    from napari_weakseg.methods.baselines import SegOnly

    def broken(self, batch, phase):
        raise RuntimeError("a bug in a method")

    monkeypatch.setattr(SegOnly, "forward", broken)
    result = cli("train", study, "--method", "seg-only", "--out", tmp_path / "f", "--steps", "2", "--config", data["config"])
    assert_one_line_error(result, "a bug in a method")
    log = (tmp_path / "f" / "train.log").read_text()
    assert "ERROR failed: RuntimeError: a bug in a method" in log and "Traceback (most recent call last)" in log
