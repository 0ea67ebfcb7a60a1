"""The BraTS suite end to end on a tiny synthetic folder in the BraTS layout (never the real data):
three volumes of 8 axial slices, 32x32, a brain disc with a bright tumour blob on some slices."""

from __future__ import annotations

import json
import re
import shutil

import nibabel as nib
import numpy as np
import pytest

from napari_weakseg.bench.brats import PROFILES, BratsProfile, plan_runs, run_brats_suite
from napari_weakseg.cli import main
from napari_weakseg.data.brats import FILES, annotation_order, find_brats, list_cases, load_brats_case, n_annotated, split_cases
from napari_weakseg.errors import InputError
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, load_study
from napari_weakseg.study.model import Tag

TINY_NET = {"input_size": None, "batch_size": 2, "annotated_per_batch": 1, "disc_base": 4, "augment": False,
            "net": {"base": 4, "depth": 2, "max_channels": 8, "code_channels": 8, "unique_channels": 4, "res_blocks": 1}}
TINY = BratsProfile(preset="quick", size=16, steps=2, curve_methods=("seg-only", "genseg"), curve_fractions=(0.1, 1.0),
                    cyclegan_fractions=(0.5,), base_fraction=0.1, overrides=TINY_NET, panel_rows=2)
TUMOUR_SLICES = {0: [2, 3, 4, 5], 1: [1, 2, 3], 2: [3, 4, 5, 6]}  # per volume; the others are tumour-free


def _write_case(folder, index, rng):
    """(X, Y, Z) = (32, 32, 8) NIfTI files: brain disc on slices 1..7 (slice 0 has no brain), tumour
    blob of labels 1..4 on TUMOUR_SLICES[index] (one voxel outside the brain, to be ignored)."""
    folder.mkdir(parents=True)
    z, y, x = np.mgrid[:8, :32, :32]
    brain = ((y - 16) ** 2 + (x - 16) ** 2 < 13**2) & (z >= 1)
    tumour = np.zeros((8, 32, 32), np.uint8)
    for s in TUMOUR_SLICES[index]:
        blob = (y[s] - 12 - index) ** 2 + (x[s] - 14) ** 2 < 5**2
        tumour[s][blob] = 1 + (x[s][blob] % 4)
    tumour[2, 0, 0] = 2  # outside the brain: not whole tumour
    for name, base in (("Flair_subtrMeanDivStd", 0.0), ("T1c_subtrMeanDivStd", 0.5)):
        img = (rng.normal(0, 0.3, brain.shape) + brain * 1.0 + (tumour > 0) * 2.0 + base) * brain
        _save(folder / f"{name}.nii.gz", img.astype(np.float32))
    _save(folder / "OTMultiClass.nii.gz", tumour)
    _save(folder / "brainmask.nii.gz", brain.astype(np.float32))


def _save(path, arr):
    nib.save(nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)), np.eye(4)), str(path))  # napari (Z, Y, X) -> (i, j, k)


@pytest.fixture
def brats(tmp_path):
    rng = np.random.default_rng(0)
    for i in range(3):
        _write_case(tmp_path / "data" / "brats2015" / f"case{i}", i, rng)
    return tmp_path / "data"


def test_cases_load_with_tags_from_the_masks_inside_the_brain(brats):
    cases = [load_brats_case(c, 16) for c in list_cases(find_brats(brats))]
    assert [c.name for c in cases] == ["case0", "case1", "case2"]
    for i, case in enumerate(cases):
        assert case.images.shape == (2, 7, 16, 16) and case.images.dtype == np.float32
        assert list(case.slices) == list(range(1, 8))  # slice 0 has no brain
        expected = [Tag.PRESENCE if s in TUMOUR_SLICES[i] else Tag.ABSENCE for s in case.slices]
        assert list(case.tags) == expected and case.tumour.shape == (7, 16, 16)
        assert all(case.tumour[r].any() == (t == Tag.PRESENCE) for r, t in enumerate(case.tags))
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


def test_splits_and_annotated_counts(brats):
    for seed in range(5):
        train, test = split_cases(3, seed)
        assert test == [seed % 3] and not set(train) & set(test) and sorted(train + test) == [0, 1, 2]
    with pytest.raises(InputError, match="cannot hold out"):
        split_cases(2, 0, n_test=2)
    assert [n_annotated(f, 200) for f in (0.0, 0.001, 0.01, 0.1, 1.0)] == [0, 1, 2, 20, 200]
    cases = [load_brats_case(c, 16) for c in list_cases(find_brats(brats))]
    order = annotation_order(cases, 0)
    assert len(order) == sum(len(v) for v in TUMOUR_SLICES.values()) and order == annotation_order(cases, 0)


def test_suite_runs_end_to_end_and_reports_only_what_results_json_holds(tmp_path, brats):
    out, work = tmp_path / "out", tmp_path / "work"
    results = run_brats_suite(brats, out, TINY, seeds=2, methods=("seg-only", "genseg", "cyclegan-ssl"), device="cpu",
                              log=lambda m: None, work=work)
    saved = json.loads((out / "results.json").read_text())
    assert saved["suite"] == "brats" and saved["profile"] == "custom" and saved["matmul_flops_per_s"] > 0
    plan = plan_runs(TINY, ("seg-only", "genseg", "cyclegan-ssl"))
    assert [list(p) for p in plan] == saved["plan"] == [["seg-only", 0.1], ["genseg", 0.1], ["cyclegan-ssl", 0.1],
                                                        ["seg-only", 0.5], ["cyclegan-ssl", 0.5], ["seg-only", 1.0], ["genseg", 1.0]]
    assert len(saved["runs"]) == 2 * len(plan)
    names = ["case0", "case1", "case2"]
    for sp in saved["splits"]:  # no volume in two splits; seed i holds out case i
        assert not set(sp["train"]) & set(sp["test"]) and sorted(sp["train"] + sp["test"]) == names
        assert sp["test"] == [names[sp["seed"]]]
    for run in saved["runs"]:
        assert 0 <= run["dice_pooled"] <= 1 and run["curve"]["steps"] == [1, 2]
        n_p = run["n_train_presence"]
        assert n_p == sum(len(TUMOUR_SLICES[i]) for i in range(3) if i != run["seed"])
        assert run["n_annotated"] == max(1, round(run["fraction"] * n_p))
        assert run["test_presence"] == len(TUMOUR_SLICES[run["seed"]]) and run["test_slices"] == 7
    # the study folders: tags follow the masks, the annotated slices follow the fraction, and nest
    annotated = {}
    for fraction in (0.1, 0.5, 1.0):
        study = load_study(work / "seed0" / f"study-{fraction:g}")
        assert [im.name for im in study.images] == ["case1", "case2"]
        chosen = set()
        for im, i in zip(study.images, (1, 2)):
            presence = [s - 1 for s in TUMOUR_SLICES[i]]  # rows: slice 0 was dropped
            assert list(np.flatnonzero(im.tags == Tag.PRESENCE)) == presence
            assert (im.tags[[r for r in range(7) if r not in presence]] == Tag.ABSENCE).all()
            assert set(np.flatnonzero(im.annotated())) <= set(presence) and not im.mask[im.tags == Tag.ABSENCE].any()
            chosen |= {(im.name, int(r)) for r in np.flatnonzero(im.annotated())}
        annotated[fraction] = chosen
        assert len(chosen) == n_annotated(fraction, 7)
    assert annotated[0.1] <= annotated[0.5] <= annotated[1.0]
    # the report's numbers are results.json's
    report = (out / "report.md").read_text()
    table = saved["summary"]["table"]
    for m in ("seg-only", "genseg", "cyclegan-ssl"):
        r = table[f"{m}|0.1"]
        assert r["dice_mean"] == pytest.approx(np.mean([x["dice_pooled"] for x in saved["runs"] if x["method"] == m and x["fraction"] == 0.1]))
        row = re.search(rf"^\| {m} \| ([0-9.]+) \(([0-9.]+)\) \| ([0-9.]+) \|", report, re.M)
        assert r["dice_std"] == pytest.approx(np.std([x["dice_pooled"] for x in saved["runs"] if x["method"] == m and x["fraction"] == 0.1], ddof=1))
        assert row and float(row.group(1)) == pytest.approx(r["dice_mean"], abs=5e-4)
    for f, v in saved["summary"]["cyclegan_vs_seg_only"].items():
        row = re.search(rf"^\| {float(f) * 100:g} % \| [^|]+ \| ([0-9.]+) \| ([0-9.]+) \|", report, re.M)
        assert row and float(row.group(1)) == pytest.approx(v["seg-only"], abs=5e-4) and float(row.group(2)) == pytest.approx(v["cyclegan-ssl"], abs=5e-4)
    gap = saved["summary"]["gap"]
    if gap["methods"].get("genseg", {}).get("share") is not None:
        share = (table["genseg|0.1"]["dice_mean"] - gap["seg_only_low"]) / (gap["seg_only_full"] - gap["seg_only_low"])
        assert gap["methods"]["genseg"]["share"] == pytest.approx(share)
    assert "Reduced scale" in report and "genseg beats seg-only" in report and "could not be retrieved" not in report
    assert re.search(r"\| genseg \| [^\n]*\| 0\.83 \(0\.01\) \| 64% ± 7% \|", report)  # Table II, Fig. 7
    assert "0.8863 / 0.8890" in report  # Mondal et al. Table 1, ACDC at 50 %
    for png in ("brats-dice.png", "brats-curve.png", "brats-losses.png", "brats-qualitative.png"):
        assert (out / png).stat().st_size > 1000
    assert results["summary"] == saved["summary"]
    # --report-only through the CLI: the same report from results.json alone, and into the docs
    shutil.rmtree(work)
    (out / "report.md").unlink()
    docs = tmp_path / "docs" / "benchmarks.md"
    assert main(["bench", "brats", "--out", str(out), "--report-only", "--docs", str(docs)]) == 0
    assert (out / "report.md").read_text() == report
    assert json.loads((out / "results.json").read_text())["summary"] == saved["summary"]
    assert "<!-- bench:brats-custom:start -->" in docs.read_text() and "../out/brats-curve.png" in docs.read_text()


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
    with pytest.raises(InputError, match="brainmask.nii.gz: not a readable NIfTI"):
        run_brats_suite(brats, tmp_path / "out", TINY, device="cpu", log=lambda m: None)
    shutil.rmtree(brats / "brats2015" / "case2")
    with pytest.raises(InputError, match="at least 2"):
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

        def predict_volume(self, x):  # x (C, Z, S, S)
            return {"prob": np.zeros(x.shape[1:], np.float32), "healthy": x, "residual": np.zeros_like(x)}

    case = load_brats_case(list_cases(find_brats(brats))[0], 16)
    panel = panel_slices(Stub(), case, 2)
    areas = panel["truth"].sum(axis=(1, 2))
    assert (areas > 0).all() and areas[0] == case.tumour.sum(axis=(1, 2)).max()
    slices = {int(label.rsplit(" ", 1)[1]) for label in panel["rows"]}  # "case\nslice N"
    assert slices <= set(TUMOUR_SLICES[0]) and panel["input"].shape == (2, 16, 16)
