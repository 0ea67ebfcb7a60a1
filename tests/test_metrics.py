"""Segmentation metrics on hand-computed cases, file evaluation and ``weakseg evaluate``."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from napari_weakseg.cli import main
from napari_weakseg.errors import InputError
from napari_weakseg.io.nifti import write_nifti
from napari_weakseg.training.metrics import (
    assd,
    dice,
    evaluate_files,
    mean_dice,
    pair_inputs,
    pooled_dice,
    slice_scores,
    surface,
    surface_distances,
)


def brute_force_assd(a: np.ndarray, b: np.ndarray, spacing=None) -> float:
    """ASSD by definition: surface = voxel with a face-neighbour outside the mask (or off the array)."""
    spacing = np.ones(a.ndim) if spacing is None else np.asarray(spacing, float)

    def surf(m):
        pts = []
        for idx in zip(*np.nonzero(m), strict=False):
            for ax, step in itertools.product(range(m.ndim), (-1, 1)):
                n = list(idx)
                n[ax] += step
                if not 0 <= n[ax] < m.shape[ax] or not m[tuple(n)]:
                    pts.append(idx)
                    break
        return np.array(pts, float) * spacing

    sa, sb = surf(a), surf(b)
    d = np.sqrt(((sa[:, None, :] - sb[None, :, :]) ** 2).sum(-1))
    return (d.min(1).sum() + d.min(0).sum()) / (len(sa) + len(sb))


# --- Dice --------------------------------------------------------------------------------------
def test_dice_hand_cases():
    pred = np.zeros((6, 6), np.uint8)
    truth = np.zeros((6, 6), np.uint8)
    pred[1, 1:5] = 1  # 4 pixels
    truth[1, 2:5] = 2  # labels > 0 count: 3 pixels in the prediction ...
    truth[2, 2:5] = 7  # ... and 3 outside: |T| = 6, overlap 3
    assert dice(pred, truth) == pytest.approx(2 * 3 / (4 + 6))
    assert dice(pred, pred) == 1.0
    assert dice(np.zeros((4, 4)), np.zeros((4, 4))) == 1.0  # both empty
    assert dice(pred, np.zeros_like(pred)) == 0.0
    assert dice(np.zeros_like(pred), truth) == 0.0
    with pytest.raises(InputError, match="does not match"):
        dice(pred, truth[:5])


def test_pooled_versus_mean_dice():
    small_p, small_t = np.zeros((10, 10)), np.zeros((10, 10))
    small_p[0, :2] = small_t[0, :2] = 1  # perfect, 2 + 2 pixels
    big_p, big_t = np.zeros((10, 10)), np.zeros((10, 10))
    big_p[2, :] = 1  # 10 pixels
    big_t[5, :] = 1  # 10 pixels, no overlap
    pairs = [(small_p, small_t), (big_p, big_t)]
    assert mean_dice(pairs) == pytest.approx((1.0 + 0.0) / 2)
    assert pooled_dice(pairs) == pytest.approx(2 * 2 / (4 + 20))
    empty = np.zeros((3, 3))
    assert pooled_dice([(empty, empty), (empty, empty)]) == 1.0
    assert mean_dice([(empty, empty), (big_p, big_t)]) == 0.5
    assert math.isnan(pooled_dice([])) and math.isnan(mean_dice([]))
    # a generator works as well as a list
    assert pooled_dice((p, t) for p, t in pairs) == pytest.approx(1 / 6)


# --- surfaces and ASSD ----------------------------------------------------------------------------
def test_surfaces_are_computed_in_the_arrays_dimension():
    cube = np.zeros((9, 9, 9), bool)
    cube[2:7, 2:7, 2:7] = True  # 5^3 voxels
    assert surface(cube).sum() == 125 - 27  # 3D: all but the 3^3 interior
    square = np.zeros((9, 9), bool)
    square[2:7, 2:7] = True
    assert surface(square).sum() == 16  # 2D ring
    full = np.ones((4, 4), bool)
    assert surface(full).sum() == 12  # voxels on the array's edge are surface
    assert not surface(np.zeros((3, 3))).any()


def test_assd_identical_points_and_lines():
    a = np.zeros((20, 20), bool)
    a[5, 5] = True
    assert assd(a, a) == 0.0
    for k in (1, 3, 7):
        b = np.zeros((20, 20), bool)
        b[5, 5 + k] = True
        assert assd(a, b) == pytest.approx(k)  # two single pixels k apart
        line_a = np.zeros((20, 20), bool)
        line_b = np.zeros((20, 20), bool)
        line_a[2, 3:15] = True
        line_b[2 + k, 3:15] = True
        assert assd(line_a, line_b) == pytest.approx(k)  # every pixel has its twin k rows away


def test_assd_squares_offset_by_k():
    # squares of side 8 at columns 0..7 (A) and 3..10 (B), same rows: computed by hand.
    # A's surface (28 pixels) to B's surface:
    #   top and bottom rows, columns 0, 1, 2: 3 + 2 + 1, twice            = 12
    #   left column, rows 1..6: 3 each (to B's left column)               = 18
    #   right column (column 7, inside B), rows 1..6: min(r, 7 - r, 3, 4)
    #     = 1, 2, 3, 3, 2, 1                                               = 12
    #   the rest of the top/bottom rows lies on B's rows                   =  0
    # B to A is the mirror image: the same 42 over 28 pixels.
    a = np.zeros((16, 20), bool)
    b = np.zeros((16, 20), bool)
    a[4:12, 5:13] = True
    b[4:12, 8:16] = True
    assert assd(a, b) == pytest.approx((42 + 42) / (28 + 28))  # = 1.5
    d_ab, d_ba = surface_distances(a, b)
    assert len(d_ab) == len(d_ba) == 28 and d_ab.sum() == pytest.approx(42)
    # the same offset with pixels 0.5 wide in x: a pure scaling of the x distances
    # is not a hand case any more, but must agree with the definition
    assert assd(a, b, spacing=(1.0, 0.5)) == pytest.approx(brute_force_assd(a, b, (1.0, 0.5)))
    # the same offset along y (by symmetry, the same 1.5); with 2 mm pixels, 3 mm
    c = np.zeros((16, 20), bool)
    c[7:15, 5:13] = True
    assert assd(a, c) == pytest.approx(1.5)
    assert assd(a, c, spacing=(2.0, 2.0)) == pytest.approx(3.0)


def test_assd_with_spacing_points():
    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[2, 2] = True
    b[5, 6] = True  # 3 rows and 4 columns away
    assert assd(a, b) == pytest.approx(5.0)
    assert assd(a, b, spacing=(2.0, 0.5)) == pytest.approx(math.hypot(6.0, 2.0))
    with pytest.raises(InputError, match="one positive size per axis"):
        assd(a, b, spacing=(1.0,))


def test_assd_3d():
    # two 5x5 planes k slices apart, slices 2.5 mm apart: every voxel is k * 2.5 mm from its twin
    for k in (1, 2):
        a = np.zeros((8, 9, 9), bool)
        b = np.zeros((8, 9, 9), bool)
        a[2, 2:7, 2:7] = True
        b[2 + k, 2:7, 2:7] = True
        assert assd(a, b, spacing=(2.5, 1.0, 1.0)) == pytest.approx(2.5 * k)
    # cubes offset along z: 3D surfaces (faces count), checked against the definition
    a = np.zeros((12, 10, 10), bool)
    b = np.zeros((12, 10, 10), bool)
    a[2:7, 2:7, 2:7] = True
    b[4:9, 3:8, 2:7] = True
    assert assd(a, b) == pytest.approx(brute_force_assd(a, b))
    assert assd(a, b, (3.0, 1.0, 0.7)) == pytest.approx(brute_force_assd(a, b, (3.0, 1.0, 0.7)))
    assert assd(a, a) == 0.0


def test_assd_random_blobs_match_the_definition(rng):
    from scipy import ndimage as ndi

    for shape in ((24, 30), (10, 14, 12)):
        a = ndi.gaussian_filter(rng.random(shape), 2) > 0.5
        b = ndi.gaussian_filter(rng.random(shape), 2) > 0.5
        a[(0,) * len(shape)] = b[(-1,) * len(shape)] = True  # never empty; touches the array's edge
        spacing = (1.5,) + (1.0,) * (len(shape) - 1)
        assert assd(a, b, spacing) == pytest.approx(brute_force_assd(a, b, spacing))


def test_assd_empty_cases():
    e = np.zeros((5, 5), bool)
    m = e.copy()
    m[2, 2] = True
    assert assd(e, e) == 0.0
    assert assd(m, e) == math.inf and assd(e, m) == math.inf
    with pytest.raises(InputError, match="non-empty"):
        surface_distances(m, e)


def test_slice_scores():
    p = np.zeros((4, 8, 8), bool)
    t = np.zeros((4, 8, 8), bool)
    # slice 0: both empty
    p[1, 2, 2:6] = t[1, 2, 2:6] = True  # slice 1: identical
    p[2, 3, 3] = True  # slice 2: a false positive
    t[3, 1, 1:5] = p[3, 1, 1:5] = True  # slice 3: found, plus a false line 3 rows below
    p[3, 4, 1:5] = True
    s = slice_scores(p, t, axis=0, spacing=(9.0, 1.0, 1.0))  # the stack axis's spacing is ignored
    np.testing.assert_allclose(s["dice"], [1.0, 1.0, 0.0, 2 * 4 / 12])
    assert s["assd"][0] == 0.0 and s["assd"][1] == 0.0 and s["assd"][2] == math.inf
    assert s["assd"][3] == pytest.approx(brute_force_assd(p[3], t[3]))
    np.testing.assert_array_equal(s["pred_voxels"], [0, 4, 1, 8])
    np.testing.assert_array_equal(s["truth_voxels"], [0, 4, 0, 4])


# --- files ----------------------------------------------------------------------------------------
SPACING = (2.0, 1.0, 0.5)  # (sz, sy, sx)
AFFINE = np.diag([0.5, 1.0, 2.0, 1.0])  # NIfTI (i, j, k) order


def nii(path, arr):
    return write_nifti(path, np.asarray(arr), affine=AFFINE)


@pytest.fixture
def volumes():
    truth = np.zeros((6, 10, 10), np.uint8)
    truth[2, 2:6, 2:6] = 1  # label 1: 16 voxels
    truth[3, 2:6, 2:6] = 2  # label 2: 16 voxels
    truth[4, 2:6, 2:6] = 4  # label 4: 16 voxels
    pred = np.zeros((6, 10, 10), np.uint8)
    pred[2, 2:6, 2:6] = 1
    pred[4, 2:6, 2:6] = 1  # labels 1 and 4 found, label 2 missed
    return pred, truth


def test_evaluate_files_nifti_and_labels(tmp_path, volumes):
    pred, truth = volumes
    pp, tp = nii(tmp_path / "case_pred.nii.gz", pred), nii(tmp_path / "case.nii.gz", truth)
    r = evaluate_files([pp], [tp])
    c = r["cases"][0]
    assert c["name"] == "case_pred" and c["shape"] == [6, 10, 10]
    assert c["dice"] == pytest.approx(2 * 32 / (32 + 48)) and r["pooled_dice"] == r["mean_dice"] == pytest.approx(c["dice"])
    assert c["pred_voxels"] == 32 and c["truth_voxels"] == 48
    # 3D ASSD with the file's voxel size equals the definition on that grid
    assert c["assd"] == pytest.approx(brute_force_assd(pred > 0, truth > 0, SPACING))
    assert r["per_slice"] is False and r["units"] == 1 and r["labels"] is None

    r = evaluate_files(pp, tp, labels=[1, 4])
    assert r["cases"][0]["dice"] == 1.0 and r["cases"][0]["assd"] == 0.0 and r["labels"] == [1, 4]
    r = evaluate_files(pp, tp, labels=[2])
    assert r["cases"][0]["dice"] == 0.0 and r["cases"][0]["truth_voxels"] == 16

    # per-slice: 6 slices, 3 empty in both (Dice 1), 2 found (1), 1 missed (0)
    r = evaluate_files(pp, tp, per_slice=True)
    assert r["per_slice"] and r["units"] == 6
    assert r["mean_dice"] == pytest.approx(5 / 6)
    assert r["mean_assd"] == 0.0 and r["assd_undefined"] == 1
    assert r["cases"][0]["mean_dice"] == pytest.approx(5 / 6) and r["cases"][0]["assd_undefined"] == 1


def test_evaluate_files_several_cases_and_empty(tmp_path, volumes):
    pred, truth = volumes
    empty = np.zeros_like(truth)
    paths = [
        nii(tmp_path / f"{n}.nii.gz", a)
        for n, a in (("p1", pred), ("t1", truth), ("p2", empty), ("t2", truth), ("p3", empty), ("t3", empty))
    ]
    r = evaluate_files(paths[0::2], paths[1::2])
    dices = [c["dice"] for c in r["cases"]]
    assert dices == pytest.approx([0.8, 0.0, 1.0])
    assert r["mean_dice"] == pytest.approx(0.6)
    assert r["pooled_dice"] == pytest.approx(2 * 32 / (32 + 48 + 48))
    assert r["cases"][1]["assd"] == math.inf and r["cases"][2]["assd"] == 0.0
    assert r["mean_assd"] == pytest.approx(r["cases"][0]["assd"]) and r["assd_undefined"] == 1


def test_evaluate_files_refusals(tmp_path, volumes):
    pred, truth = volumes
    tp = nii(tmp_path / "t.nii.gz", truth)
    small = nii(tmp_path / "small.nii.gz", pred[:, :8])
    with pytest.raises(InputError, match=r"small.nii.gz: prediction shape \(6, 8, 10\) does not match"):
        evaluate_files([small], [tp])
    with pytest.raises(InputError, match="1 prediction"):
        evaluate_files([small], [tp, tp])
    prob = tmp_path / "prob.nii.gz"
    write_nifti(prob, pred * 0.4, affine=AFFINE)
    with pytest.raises(InputError, match="whole-number labels"):
        evaluate_files([prob], [tp])
    moved = tmp_path / "moved.nii.gz"
    write_nifti(moved, pred, affine=np.diag([1.0, 1.0, 1.0, 1.0]))
    with pytest.warns(UserWarning, match="affine differs"):
        evaluate_files([moved], [tp])


def test_evaluate_image_folders(tmp_path):
    from skimage.io import imsave

    for name in ("pred", "truth"):
        (tmp_path / name).mkdir()
    t = np.zeros((2, 12, 12), np.uint8)
    t[0, 2:6, 2:6] = 255
    t[1, 3:9, 3:9] = 255
    p = np.zeros_like(t)
    p[0, 2:6, 2:6] = 255
    p[1, 3:9, 5:11] = 255  # 6x6 offset by 2 columns
    for i in range(2):
        imsave(tmp_path / "truth" / f"img{i}_mask.png", t[i], check_contrast=False)
        imsave(tmp_path / "pred" / f"img{i}.png", p[i], check_contrast=False)
    cases = pair_inputs(tmp_path / "pred", tmp_path / "truth")
    assert len(cases) == 1
    r = evaluate_files([cases[0][1]], [cases[0][2]], names=[cases[0][0]])
    assert r["per_slice"] and r["units"] == 2  # a folder of 2D images: one unit per image
    assert r["cases"][0]["name"] == "pred"
    assert r["mean_dice"] == pytest.approx((1.0 + 2 * 24 / 72) / 2)
    assert r["mean_assd"] == pytest.approx((0.0 + brute_force_assd(p[1] > 0, t[1] > 0)) / 2)


def test_pair_inputs_folders(tmp_path, volumes):
    pred, truth = volumes
    (tmp_path / "p").mkdir()
    (tmp_path / "t").mkdir()
    nii(tmp_path / "p" / "a_pred.nii.gz", pred)
    nii(tmp_path / "p" / "b.nii.gz", pred)
    nii(tmp_path / "t" / "a_seg.nii.gz", truth)
    nii(tmp_path / "t" / "b_gt.nii.gz", truth)
    nii(tmp_path / "t" / "c.nii.gz", truth)
    with pytest.warns(UserWarning, match="1 ground-truth file"):
        cases = pair_inputs(tmp_path / "p", tmp_path / "t")
    assert [(n, p.name, t.name) for n, p, t in cases] == [("a_pred", "a_pred.nii.gz", "a_seg.nii.gz"), ("b", "b.nii.gz", "b_gt.nii.gz")]
    nii(tmp_path / "p" / "d.nii.gz", pred)
    with pytest.raises(InputError, match="no ground truth for d.nii.gz"):
        pair_inputs(tmp_path / "p", tmp_path / "t")
    with pytest.raises(InputError, match="two files or two folders"):
        pair_inputs(tmp_path / "p" / "b.nii.gz", tmp_path / "t")
    with pytest.raises(InputError, match="no such file"):
        pair_inputs(tmp_path / "nothing.nii.gz", tmp_path / "t")


# --- the command ----------------------------------------------------------------------------------
def test_cli_evaluate_text_and_json(tmp_path, volumes, capsys):
    pred, truth = volumes
    pp, tp = nii(tmp_path / "case_pred.nii.gz", pred), nii(tmp_path / "case.nii.gz", truth)
    assert main(["evaluate", str(pp), str(tp)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["case", "dice", "assd"]
    assert lines[1].split()[:2] == ["case_pred", "0.8000"]
    assert "pooled dice  0.8000" in out and "mean dice    0.8000  (1 cases)" in out

    assert main(["evaluate", str(pp), str(tp), "--labels", "1,4", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["cases"][0]["dice"] == 1.0 and r["labels"] == [1, 4] and r["pooled_dice"] == 1.0

    empty = nii(tmp_path / "empty.nii.gz", np.zeros_like(pred))
    assert main(["evaluate", str(empty), str(tp), "--json"]) == 0
    r = json.loads(capsys.readouterr().out)  # strict JSON: an undefined ASSD is null, not Infinity
    assert r["cases"][0]["assd"] is None and r["mean_assd"] is None and r["assd_undefined"] == 1
    assert main(["evaluate", str(empty), str(tp)]) == 0
    assert "inf" in capsys.readouterr().out

    assert main(["evaluate", str(pp), str(tp), "--per-slice"]) == 0
    out = capsys.readouterr().out
    assert "mean dice" in out and "(6 slices)" in out


def test_cli_evaluate_errors(tmp_path, volumes, capsys):
    pred, truth = volumes
    tp = nii(tmp_path / "t.nii.gz", truth)
    small = nii(tmp_path / "small.nii.gz", pred[:5])
    assert main(["evaluate", str(small), str(tp)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("weakseg: error: small.nii.gz: prediction shape") and err.count("\n") == 1
    assert main(["evaluate", str(tp), str(tp), "--labels", "1,x"]) == 1
    assert "--labels" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "missing.nii.gz"), str(tp)]) == 1
    assert "no such file" in capsys.readouterr().err
