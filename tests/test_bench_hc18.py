"""The HC18 suite end to end on a tiny synthetic folder in the HC18 layout (never the real data):
bright skull rings on speckle, their ellipse outlines as annotations, a csv of pixel sizes and HCs."""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest
from scipy import ndimage as ndi
from skimage import io as skio
from skimage.draw import ellipse, ellipse_perimeter

from napari_weakseg.bench.hc18 import (
    ABLATIONS,
    HC18Profile,
    prior_from_circumference,
    run_hc18_suite,
)
from napari_weakseg.bench.hc18 import (
    ellipse_perimeter as perimeter,
)
from napari_weakseg.cli import main
from napari_weakseg.data.hc18 import CSV_NAME, fill_annotation, split_names, to_square
from napari_weakseg.errors import InputError

# in natural order; 007_2HC is a repeat scan of fetus 007 (HC18 sorts it before 007_HC)
NAMES = ["000_HC", "001_HC", "002_HC", "003_HC", "004_HC", "005_HC", "006_HC", "007_2HC", "007_HC", "008_HC", "009_HC", "010_HC"]
TINY = HC18Profile(
    preset="quick",
    size=32,
    n_train=8,
    n_test=3,
    steps=2,
    rounds=1,
    round_steps=2,
    overrides={"net": {"base": 4, "depth": 2, "max_channels": 16}, "batch_size": 4, "disc_base": 4, "augment": False},
    pseudo_label={"vae_steps": 3, "vae_base": 4, "vae_batch": 4, "vae_size": 16, "aux_count": 16, "res_blocks": 1},
    panel=2,
)


@pytest.fixture
def hc18(tmp_path):
    """DATA/hc18/images/NNN_HC.png + NNN_HC_Annotation.png (RGB outline) and the csv, 48x40 images."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "hc18"
    (folder / "images").mkdir(parents=True)
    rows = ["filename,pixel size(mm),head circumference (mm)"]
    for i, name in enumerate(NAMES):
        h, w = 40, 48
        a, b = rng.uniform(10, 15), rng.uniform(7, 10)  # semi-axes, px
        cy, cx, theta = rng.uniform(16, 24), rng.uniform(20, 28), rng.uniform(0, math.pi)
        img = rng.gamma(2.0, 25.0, size=(h, w))  # speckle
        outline = np.zeros((h, w, 3), np.uint8)
        pr, pc = ellipse_perimeter(round(cy), round(cx), round(a), round(b), orientation=theta, shape=(h, w))
        outline[pr, pc] = (255, 0, 0)
        img[ndi.binary_fill_holes(outline[..., 0] > 0)] *= 1.6  # brighter inside the head
        img[pr, pc] = 250  # the skull: a bright ring
        skio.imsave(folder / "images" / f"{name}.png", np.clip(img, 0, 255).astype(np.uint8), check_contrast=False)
        skio.imsave(folder / "images" / f"{name}_Annotation.png", outline, check_contrast=False)
        px = 0.5 + 0.02 * i
        rows.append(f"{name}.png,{px},{perimeter(2 * a * px, b / a):.2f}")
    (folder / CSV_NAME).write_text("\n".join(rows) + "\n")
    return tmp_path / "data"


def test_suite_runs_end_to_end_and_reports_only_what_results_json_holds(tmp_path, hc18):
    out = tmp_path / "out"
    results = run_hc18_suite(hc18, out, TINY, device="cpu", log=lambda m: None)
    saved = json.loads((out / "results.json").read_text())
    assert saved["suite"] == "hc18" and saved["profile"] == "custom" and saved["matmul_flops_per_s"] > 0
    st = saved["settings"]
    # the split keeps 007_2HC and 007_HC together: 9 training images, then 3 test images
    assert st["train_images"] == [f"{n}.png" for n in NAMES[:9]] and st["test_images"] == [f"{n}.png" for n in NAMES[9:]]
    assert [r["name"] for r in saved["ablations"]] == [name for name, *_ in ABLATIONS]
    for row, (_, vae, dgcc) in zip(saved["ablations"], ABLATIONS, strict=True):
        assert (row["use_vae_disc"], row["use_dgcc"]) == (vae, dgcc)
        assert 0 <= row["dice_mean"] <= 1 and len(row["dice_per_image"]) == 9
        assert all(0 <= d <= 1 for d in row["dice_per_image"])
    assert [f["weighted_dice"] for f in saved["final"]] == [True, False]
    for f in saved["final"]:
        assert 0 <= f["train"]["dice_mean"] <= 1 and 0 <= f["test"]["dice_mean"] <= 1 and len(f["test"]["dice_per_image"]) == 3
        assert f["rounds"] == [{"round": 1, "trained_on": f["selection"]["kept"]}]
    # the prior is in mm, from the csv's HCs; the study's pixel size is the training images' median
    lo, hi = st["pseudo_label"]["ellipse_size_mm"]
    assert 0 < lo < hi and st["pixel_mm"]["study"] == pytest.approx(np.median([(0.5 + 0.02 * i) * 48 / 32 for i in range(9)]))
    report = (out / "report.md").read_text()
    for name, row in saved["summary"]["ablations"].items():
        line = re.search(rf"^\| {re.escape(name)} \| (yes|no) \| (yes|no) \| ([0-9.]+) ", report, re.M)
        assert line and float(line.group(3)) == pytest.approx(row["dice_mean"], abs=5e-4)
    for name, row in saved["summary"]["final"].items():
        line = re.search(rf"^\| {name} \| ([0-9.]+) .*?\| ([0-9.]+) \(", report, re.M)
        assert line and float(line.group(1)) == pytest.approx(row["train"]["dice_mean"], abs=5e-4)
        assert float(line.group(2)) == pytest.approx(row["test"]["dice_mean"], abs=5e-4)
    assert "0.904" in report and "0.937" in report and "0.962" in report and "Reduced scale" in report
    for png in ("hc18-dice.png", "hc18-qualitative.png", "hc18-losses.png"):
        assert (out / png).stat().st_size > 1000
    assert results["summary"] == saved["summary"]
    # --report-only: the report again from results.json alone (no work folder), and into the docs
    import shutil

    shutil.rmtree(out / "work")
    (out / "report.md").unlink()
    docs = tmp_path / "docs" / "benchmarks.md"
    assert main(["bench", "hc18", "--out", str(out), "--report-only", "--docs", str(docs)]) == 0
    assert (out / "report.md").read_text() == report
    assert "<!-- bench:hc18-custom:start -->" in docs.read_text() and "../out/hc18-dice.png" in docs.read_text()


def test_a_missing_data_folder_is_a_clear_input_error(tmp_path, capsys):
    with pytest.raises(InputError, match="no HC18 data"):
        run_hc18_suite(tmp_path / "nowhere", tmp_path / "out", TINY, device="cpu", log=lambda m: None)
    assert main(["bench", "hc18", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 1
    assert "no HC18 data" in capsys.readouterr().err
    assert main(["bench", "hc18", "--out", str(tmp_path / "out")]) == 1  # --data is required
    assert not (tmp_path / "out" / "results.json").exists()


def test_split_keeps_repeat_scans_of_a_fetus_together():
    names = ["000_HC.png", "001_HC.png", "001_2HC.png", "002_HC.png", "003_HC.png", "003_2HC.png", "003_3HC.png", "004_HC.png"]
    assert split_names(names, 2, 2) == (names[:3], names[3:7])
    assert split_names(names, None, 2) == (names[:4], names[4:])  # at least 2 test images
    assert split_names(names, None, 3) == (names[:4], names[4:])
    with pytest.raises(InputError, match="too few"):
        split_names(names[:2], 2, 2)


def test_annotation_outlines_are_filled_even_when_cut_by_the_edge():
    inside = np.zeros((40, 40), bool)
    rr, cc = ellipse_perimeter(20, 20, 8, 12, shape=inside.shape)
    inside[rr, cc] = True
    filled, fitted = fill_annotation(inside)
    assert not fitted and filled.sum() == pytest.approx(math.pi * 8 * 12, rel=0.15)
    cut = np.zeros((40, 40), bool)
    rr, cc = ellipse_perimeter(20, 34, 10, 12, shape=cut.shape)  # leaves the image on the right
    cut[rr, cc] = True
    filled, fitted = fill_annotation(cut)
    full = np.zeros((40, 60), bool)
    rr, cc = ellipse(20, 34, 10, 12, shape=full.shape)
    full[rr, cc] = True
    assert fitted and abs(int(filled.sum()) - int(full[:, :40].sum())) < 0.15 * full[:, :40].sum()
    kept, fitted = fill_annotation(full[:, :40])  # already filled (some copies of HC18): kept as it is
    assert not fitted and np.array_equal(kept, full[:, :40])


def test_square_resize_and_the_prior_from_head_circumference():
    im = np.zeros((54, 80), np.float32)
    im[20:34, 30:50] = 1
    sq, factor = to_square(im, 40, mask=True)
    assert sq.shape == (40, 40) and factor == 2.0 and sq.sum() == pytest.approx(7 * 10, rel=0.3)
    assert not sq[:6].any() and not sq[-6:].any()  # padded top and bottom: 27 rows centred
    assert perimeter(10, 1.0) == pytest.approx(math.pi * 10)
    prior = prior_from_circumference(np.array([math.pi * 20, math.pi * 100]), aspect=(0.6, 1.0))
    assert prior["ellipse_size_mm"][0] in (19, 20) and 120 <= prior["ellipse_size_mm"][1] <= 125  # π·0.8·D·1.019 = 100π
    assert prior["ellipse_angle_deg"] == [0.0, 180.0]


def test_the_random_split_is_seeded_and_keeps_each_fetus_on_one_side():
    from napari_weakseg.data.hc18 import split_random, subject

    names = [f"{k:03d}_{r}HC.png" if r else f"{k:03d}_HC.png" for k in range(40) for r in range(1 + k % 3)]
    train, test = split_random(names, 12, seed=0)
    assert len(test) >= 12 and set(train) | set(test) == set(names) and not set(train) & set(test)
    assert not {subject(n) for n in train} & {subject(n) for n in test}  # repeat scans stay together
    assert split_random(names, 12, seed=0) == (train, test) and split_random(names, 12, seed=1) != (train, test)
    assert {subject(n) for n in test} != {f"{k:03d}" for k in range(len({subject(n) for n in test}))}  # not the first by index


def test_the_papers_prior_draws_its_minor_axis_and_ratio():
    from napari_weakseg.bench.hc18 import PAPER_PRIOR, PROFILES
    from napari_weakseg.data.shape_prior import sample_ellipses
    from napari_weakseg.pseudo.config import PseudoLabelConfig

    prior = PseudoLabelConfig.from_dict(PAPER_PRIOR).ellipse_prior()
    masks = sample_ellipses(40, (256, 256), 1.0, prior, seed=0).numpy()[:, 0]
    checked = 0
    for m in masks:
        rows, cols = np.nonzero(m)
        # the drawn ellipse's axes from its second moments (a filled ellipse: variance = semi-axis^2 / 4)
        ev = np.sort(np.linalg.eigvalsh(np.cov(np.stack([rows, cols]))))
        minor, major = 4 * np.sqrt(ev)
        if m[0].any() or m[-1].any() or m[:, 0].any() or m[:, -1].any():
            continue  # cut by the frame: its moments are not the ellipse's
        assert 25 - 3 <= minor <= 105 + 3 and 1.2 - 0.1 <= major / minor <= 1.8 + 0.1
        checked += 1
    assert checked >= 20, checked  # most lie inside the frame
    paper, long = PROFILES["cpu-long-paper"], PROFILES["cpu-long"]
    assert (paper.prior, paper.split, paper.size, paper.n_train) == ("paper", "random", 128, None)
    assert (long.prior, long.split, long.size, long.n_train) == ("hc", "random", 128, None)  # the measured default
