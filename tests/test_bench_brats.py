"""The BraTS suite end to end on a tiny synthetic folder in the BraTS layout (never the real data; the
``brats`` fixture, ``tiny_brats.py``)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
from tiny_brats import TUMOUR_SLICES, _write_case

from napari_weakseg.bench.brats import PROFILES, BratsProfile, kept_masks, plan_runs, run_brats_suite
from napari_weakseg.cli import main
from napari_weakseg.data.brats import FILES, find_brats, folds, list_cases, load_brats_case
from napari_weakseg.errors import InputError
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, load_study
from napari_weakseg.study.model import Tag

TINY_NET = {
    "input_size": None,
    "batch_size": 2,
    "annotated_per_batch": 1,
    "disc_base": 4,
    "augment": False,
    "net": {"base": 4, "depth": 2, "max_channels": 8, "code_channels": 8, "unique_channels": 4, "res_blocks": 1},
}
TINY = BratsProfile(preset="quick", size=16, steps=2, seeds=2, slice_fraction=0.5, val_every=1, overrides=TINY_NET, panel_rows=2)


def test_cases_load_with_tags_from_the_masks_inside_the_brain(brats):
    cases = [load_brats_case(c, 16) for c in list_cases(find_brats(brats))]
    assert [c.name for c in cases] == ["case0", "case1", "case2"]
    for i, case in enumerate(cases):
        assert case.images.shape == (2, 7, 16, 16) and case.images.dtype == np.float32
        assert list(case.slices) == list(range(1, 8))  # slice 0 has no brain
        expected = [Tag.PRESENCE if s in TUMOUR_SLICES[i] else Tag.ABSENCE for s in case.slices]
        assert list(case.tags) == expected and case.tumour.shape == (7, 16, 16)
        assert all(case.tumour[r].any() == (t == Tag.PRESENCE) for r, t in enumerate(case.tags))
        assert case.brain.shape == (7, 16, 16) and case.tumour_full.shape == (7, 32, 32) and case.tumour_full.dtype == bool
        assert case.split().axis == 2 and case.split().at == 8  # the disc's middle at the working size
        ht = case.half_tags()
        assert (ht[:, 1] != Tag.PRESENCE).all() and all((ht[r, 0] == Tag.PRESENCE) == (t == Tag.PRESENCE) for r, t in enumerate(case.tags))
    assert find_brats(brats / "brats2015") == brats / "brats2015"


def test_the_papers_brain_normalisation(brats):
    """Sec. IV-D: brain mean-centred and divided by five standard deviations of the brain; 0 outside."""
    from napari_weakseg.data.brats import normalise_brain
    from napari_weakseg.data.slices import Normaliser

    x = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    brain = np.zeros_like(x, bool)
    brain[:, 1:, 1:] = True
    y = normalise_brain(x, brain)
    assert abs(float(y[brain].mean())) < 1e-6 and abs(float(y[brain].std()) - 0.2) < 1e-6 and not y[~brain].any()
    with pytest.raises(InputError, match="cannot normalise"):
        normalise_brain(x, np.zeros_like(brain))
    case = load_brats_case(list_cases(find_brats(brats))[0], 16, brain_normalisation=True)
    assert float(np.abs(case.images).max()) < 5  # z-scores / 5: a few units at most
    assert PROFILES["gpu"].brain_normalisation and PROFILES["gpu"].overrides["normalisation"] == "none"
    study = Study()
    study.add_image(Volume(case.images, None, None, (1.0, 1.0, 1.0), ["FLAIR", "T1c"]), name="c")
    ident = Normaliser.fit(study, kind="none")
    assert np.allclose(ident.apply(case.images), case.images, atol=1e-6)  # "none": the paper's values as they are


def test_folds_and_kept_masks(brats):
    assert [folds(4, f) for f in range(4)] == [([2, 3], 1, 0), ([0, 3], 2, 1), ([0, 1], 3, 2), ([1, 2], 0, 3)]
    with pytest.raises(InputError, match="one to test, one to validate and at least one to train"):
        folds(2, 0)
    cases = [load_brats_case(c, 16) for c in list_cases(find_brats(brats))]
    train, val, _ = folds(3, 0)  # train [2], validate 1
    for seed in (0, 1):
        kept = kept_masks(cases, train, val, "volumes", seed, TINY)
        assert len(kept) == 2 and kept[0].all() and kept[-1].all()  # one training volume: it is the one
    prof = BratsProfile(preset="quick", size=16, steps=1)
    two = kept_masks(cases, [0, 2], 1, "volumes", 1, prof)
    assert not two[0].any() and two[1].all() and two[2].all()  # seed 1: the second training volume
    share = kept_masks(cases, [0, 2, 0, 2], 1, "volumes", 1, BratsProfile(preset="quick", size=16, steps=1, volume_fraction=0.5))
    assert [k.all() for k in share[:4]] == [False, True, True, False] and share[4].all()  # half the volumes, from the seed's
    one = kept_masks(cases, [0, 2], 1, "volumes", 0, BratsProfile(preset="quick", size=16, steps=1, volume_fraction=0.01))
    assert [k.all() for k in one[:2]] == [True, False]  # 1 % of two volumes: at least one
    assert PROFILES["gpu"].volume_fraction == 0.01 and PROFILES["cpu"].volume_fraction is None
    sl = kept_masks(cases, [0, 2], 1, "slices", 0, BratsProfile(preset="quick", size=16, steps=1, slice_fraction=0.5))
    units = sum(int((cases[i].half_tags() == Tag.PRESENCE).sum()) for i in (0, 2))
    kept_units = sum(int(k[r, :, :8].any()) + int(k[r, :, 8:].any()) for k in sl[:2] for r in range(7))
    assert kept_units == round(0.5 * units) and sl[2].all()
    assert list(plan_runs(TINY, ("seg-only", "genseg", "ae"), 0)) == [
        ("seg-only", "volumes"),
        ("genseg", "volumes"),
        ("ae", "volumes"),
        ("seg-only", "all"),
        ("seg-only", "slices"),
        ("genseg", "slices"),
    ]
    assert plan_runs(TINY, ("seg-only", "genseg", "ae"), 1) == [("seg-only", "volumes"), ("genseg", "volumes")]


def test_suite_runs_end_to_end_and_reports_only_what_results_json_holds(tmp_path, brats):
    out, work = tmp_path / "out", tmp_path / "work"
    methods = ("seg-only", "genseg", "cyclegan-ssl")
    results = run_brats_suite(brats, out, TINY, methods=methods, device="cpu", log=lambda m: None, work=work, folds=[0, 1])
    saved = json.loads((out / "results.json").read_text())
    assert saved["suite"] == "brats" and saved["profile"] == "custom" and saved["matmul_flops_per_s"] > 0
    assert saved["seeds"] == 2 and [f["fold"] for f in saved["folds"]] == [0, 1]
    names = ["case0", "case1", "case2"]
    for f in saved["folds"]:  # no volume in two roles
        assert f["test"] == names[f["fold"]] and f["validation"] == names[(f["fold"] + 1) % 3]
        assert f["train"] == [n for n in names if n not in (f["test"], f["validation"])]
    expected = sum(len(plan_runs(TINY, methods, seed)) for seed in range(2)) * 2
    assert len(saved["runs"]) == expected
    for run in saved["runs"]:
        assert 0 <= run["dice"] <= 1 and run["curve"]["steps"] == [1, 2] and run["best_step"] in (1, 2)
        assert run["best_val_dice"] is not None and run["test_slices"] == 7 and 0 <= run["dice_stitched"] <= 1
        assert run["prediction"] == "whole slices"
        assert run["test_presence_slices"] == len(TUMOUR_SLICES[run["fold"]])
        if run["method"] == "genseg":
            res = run["residual"]
            assert res["absence"] > 0 and res["presence"] > 0 and res["ratio"] == pytest.approx(res["absence"] / res["presence"])
            assert res["change_ratio"] == pytest.approx(res["change_absence"] / res["change_presence"])
            assert res["in_tumour"] > 0 and res["outside_tumour"] > 0
    # the study folders: hemispheres with their own tags, the validation volume fully annotated
    study = load_study(work / "fold0-seed0" / "study-volumes")
    assert [im.name for im in study.images] == ["case2", "case1"]
    for im in study.images:
        assert im.split is not None and im.split.axis == 2 and (im.half_tags[:, 1] != Tag.PRESENCE).all()
        assert im.half_annotated()[:, 0].sum() == (im.half_tags[:, 0] == Tag.PRESENCE).sum()  # one volume + validation
    info = json.loads((work / "fold0-seed0" / "genseg-volumes" / "run.json").read_text())
    assert info["train_config"]["val_images"] == ["case1"] and info["halves"] is True
    assert load_study(work / "fold0-seed0" / "study-slices").images[0].half_annotated().sum() >= 1
    # the report's numbers are results.json's
    report = (out / "report.md").read_text()
    table = saved["summary"]["table"]
    for m in methods:
        r = table[f"{m}|volumes"]
        dice = [x["dice"] for x in saved["runs"] if x["method"] == m and x["setting"] == "volumes"]
        assert r["dice_mean"] == pytest.approx(np.mean(dice)) and r["n"] == len(dice)
        row = re.search(rf"^\| {m} \| {len(dice)} \| ([0-9.]+) \(([0-9.—]+)\) \|", report, re.M)
        assert row and float(row.group(1)) == pytest.approx(r["dice_mean"], abs=5e-4)
    paired = saved["summary"]["paired"]["volumes"]
    diffs = [
        g["dice"] - s["dice"]
        for g in saved["runs"]
        for s in saved["runs"]
        if g["method"] == "genseg"
        and s["method"] == "seg-only"
        and g["setting"] == s["setting"] == "volumes"
        and (g["fold"], g["seed"]) == (s["fold"], s["seed"])
    ]
    assert paired["mean"] == pytest.approx(np.mean(diffs)) and paired["n"] == 4
    t = saved["summary"]["targets"]
    assert t["genseg_minus_seg_only"]["value"] == pytest.approx(np.mean(diffs)) and t["genseg_dice"]["target"] == 0.75
    assert f"{t['genseg_dice']['value']:.3f}" in report and "### Targets" in report
    gap = saved["summary"]["gap"]
    if gap["methods"].get("genseg", {}).get("share") is not None:
        share = (table["genseg|volumes"]["dice_mean"] - gap["seg_only_low"]) / (gap["seg_only_full"] - gap["seg_only_low"])
        assert gap["methods"]["genseg"]["share"] == pytest.approx(share)
    assert "Reduced scale" in report and "could not be retrieved" not in report
    assert re.search(r"\| genseg \| [^\n]*\| 0\.83 \(0\.01\) \| 64% ± 7% \|", report)  # Table II, Fig. 7
    assert "absence halves inside the tumour's axial range" in report and "### What the translation changes" in report
    assert "### Prediction: whole slices, or halves stitched" in report
    assert "the checkpoint with the best validation Dice of each run is scored" in report
    for png in ("brats-dice.png", "brats-losses.png", "brats-qualitative.png"):
        assert (out / png).stat().st_size > 1000
    assert results["summary"] == saved["summary"]
    # --report-only through the CLI: the same report from results.json alone, and into the docs
    shutil.rmtree(work)
    (out / "report.md").unlink()
    docs = tmp_path / "docs" / "benchmarks.md"
    assert main(["bench", "brats", "--out", str(out), "--report-only", "--docs", str(docs)]) == 0
    assert (out / "report.md").read_text() == report
    assert json.loads((out / "results.json").read_text())["summary"] == saved["summary"]
    assert "<!-- bench:brats-custom:start -->" in docs.read_text() and "../out/brats-dice.png" in docs.read_text()


def test_missing_or_malformed_data_is_a_clear_input_error(tmp_path, brats, capsys):
    with pytest.raises(InputError, match="no BraTS data"):
        run_brats_suite(tmp_path / "nowhere", tmp_path / "out", TINY, device="cpu", log=lambda m: None)
    assert main(["bench", "brats", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no BraTS data" in capsys.readouterr().err
    assert main(["bench", "brats", "--out", str(tmp_path / "out")]) == 1  # --data is required
    assert "--data is required" in capsys.readouterr().err
    (brats / "brats2015" / "case1" / f"{FILES[2]}.nii.gz").unlink()
    assert main(["bench", "brats", "--data", str(brats), "--out", str(tmp_path / "out")]) == 1
    assert "case1: missing OTMultiClass.nii.gz" in capsys.readouterr().err
    (brats / "brats2015" / "case2" / "brainmask.nii.gz").write_bytes(b"not a nifti")
    shutil.rmtree(brats / "brats2015" / "case1")
    _write_case(brats / "brats2015" / "case3", 0, np.random.default_rng(1))  # three cases again
    with pytest.raises(InputError, match="brainmask.nii.gz: not a readable NIfTI"):
        run_brats_suite(brats, tmp_path / "out", TINY, device="cpu", log=lambda m: None)
    shutil.rmtree(brats / "brats2015" / "case2")
    shutil.rmtree(brats / "brats2015" / "case3")
    with pytest.raises(InputError, match="at least 3 \\(one to train, one to validate, one to test\\)"):
        run_brats_suite(brats, tmp_path / "out", TINY, device="cpu", log=lambda m: None)
    with pytest.raises(InputError, match="unknown method"):
        run_brats_suite(brats, tmp_path / "out", TINY, methods=("nope",), device="cpu", log=lambda m: None)
    assert not (tmp_path / "out" / "results.json").exists()


def test_the_panel_shows_tumour_slices_largest_first(brats):
    """The Fig. 6 panel picks held-out slices with tumour (tumour areas are unsigned sums: no wrap)."""
    from types import SimpleNamespace

    from napari_weakseg.bench.brats import panel_slices

    class Stub:
        config = SimpleNamespace(threshold=0.5)

        def predict_volume(self, x, split=None):  # x (C, Z, S, S)
            return {"prob": np.zeros(x.shape[1:], np.float32), "healthy": x, "residual": np.zeros_like(x)}

    case = load_brats_case(list_cases(find_brats(brats))[0], 16)
    panel = panel_slices(Stub(), case, 2)
    areas = panel["truth"].sum(axis=(1, 2))
    assert (areas > 0).all() and areas[0] == case.tumour.sum(axis=(1, 2)).max()
    slices = {int(label.rsplit(" ", 1)[1]) for label in panel["rows"]}  # "case\nslice N"
    assert slices <= set(TUMOUR_SLICES[0]) and panel["input"].shape == (2, 16, 16)
