"""Half-slice tags: the study model (tags per half, undo, save/load, migration of schema-1 studies), tags
from masks per half with the left-right axis found from the affine, training rows cut per half, and
prediction that stitches the halves back on the input grid."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from napari_weakseg.data.slices import Normaliser, study_slices
from napari_weakseg.errors import InputError
from napari_weakseg.inference import TrainedModel, _predict, predict_slices
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, Tag, load_study, save_study
from napari_weakseg.study.build import half_tags_from_masks, keep_masks, split_in_halves, tags_from_masks
from napari_weakseg.study.halves import HalfSplit, left_right_axis, middle_of

P, A, U = Tag.PRESENCE, Tag.ABSENCE, Tag.UNKNOWN
DATA = Path(__file__).parent / "data"
BIN = Path(sys.executable).parent


def volume(shape=(6, 8, 10), channels=1, affine=None, seed=0) -> Volume:
    data = np.random.default_rng(seed).random((channels, *shape)).astype(np.float32)
    return Volume(data, np.eye(4) if affine is None else affine, None, (1.0, 1.0, 1.0), [f"ch{c}" for c in range(channels)])


def split_study(at=5) -> tuple[Study, object]:
    st = Study()
    im = st.add_image(volume())
    st.set_split(im, HalfSplit(2, at))
    return st, im


# --- the model ---------------------------------------------------------------------------------


def test_halves_have_their_own_tags_and_the_slice_tag_summarises_them():
    st, im = split_study()
    assert im.half_tags.shape == (6, 2) and (im.half_tags == U).all()
    st.set_tags(im, [0, 1], "absence")  # both halves
    st.set_tags(im, 1, "presence", half=0)
    st.set_tags(im, 2, "absence", half=1)
    assert im.half_tags[:3].tolist() == [[A, A], [P, A], [U, A]]
    assert im.tags[:3].tolist() == [A, P, U]  # presence if either half is, absence if both are
    c = im.counts()
    assert (c["presence halves"], c["absence halves"], c["unknown halves"]) == (1, 4, 7)
    with pytest.raises(InputError, match="no half 2"):
        st.set_tags(im, 0, "absence", half=2)
    st2 = Study()
    whole = st2.add_image(volume())
    with pytest.raises(InputError, match="not split"):
        st2.set_tags(0, 0, "absence", half=0)
    assert whole.split is None and whole.half_tags is None


def test_absence_on_a_half_erases_only_that_halfs_paint_and_undo_restores_it():
    st, im = split_study()
    im.mask[3, 2:4, 1:3] = 1  # half 0 (x < 5)
    im.mask[3, 2:4, 7:9] = 1  # half 1
    assert st.mask_painted(im, [3]) == []
    assert im.half_tags[3].tolist() == [P, P] and im.half_annotated()[3].tolist() == [True, True]
    before = im.mask.copy()
    st.set_tags(im, 3, "absence", half=1)
    assert im.mask[3, :, :5].sum() == 4 and im.mask[3, :, 5:].sum() == 0
    assert im.half_tags[3].tolist() == [P, A] and im.tags[3] == P
    assert st.undo()
    assert np.array_equal(im.mask, before) and im.half_tags[3].tolist() == [P, P]


def test_painting_an_unknown_half_makes_that_half_presence_and_accept_masks_tags_each_half():
    st, im = split_study()
    st.set_tags(im, 4, "absence", half=0)
    im.mask[4, 1:3, 6:8] = 1  # paint on half 1, still unknown
    assert st.mask_painted(im, [4]) == []
    assert im.half_tags[4].tolist() == [A, P] and im.tags[4] == P
    im.mask[4, 1:3, 1:3] = 1  # paint on the absence half: reported
    assert st.mask_painted(im, [4]) == [4]
    m = np.zeros((1, 8, 10), np.uint8)
    m[0, 5:7, 1:3] = 1
    st.accept_masks(im, [5], m)
    assert im.half_tags[5].tolist() == [P, A]
    assert st.undo() and im.half_tags[5].tolist() == [U, U] and im.mask[5].sum() == 0


def test_split_moves_and_joins():
    st, im = split_study()
    st.set_tags(im, 0, "presence", half=1)
    st.set_split(im, HalfSplit(2, 4))  # moved: the halves keep their tags
    assert im.split.at == 4 and im.half_tags[0].tolist() == [U, P]
    st.set_split(im, None)
    assert im.split is None and im.half_tags is None and im.tags[0] == P
    with pytest.raises(InputError, match="in-plane axis"):
        st.set_split(im, HalfSplit(0, 3))  # the slicing axis
    with pytest.raises(InputError, match="outside 1..9"):
        st.set_split(im, HalfSplit(2, 10))


def test_save_load_round_trip_with_halves(tmp_path):
    st, im = split_study(at=6)
    im.mask[2, 1:3, 7:9] = 2
    st.mask_painted(im, [2])
    st.set_tags(im, [0, 1], "absence")
    st.set_tags(im, 2, "absence", half=0)
    st.set_tags(im, 3, "presence")
    st.confirm_empty(im, 3)
    save_study(st, tmp_path / "s")
    m = json.loads((tmp_path / "s" / "study.json").read_text())
    assert m["schema_version"] == 2 and m["images"][0]["split"] == {"axis": 2, "at": 6}
    assert m["images"][0]["half_tags"][:8] == "aaaaappp"
    back = load_study(tmp_path / "s").images[0]
    assert back.split == HalfSplit(2, 6)
    assert np.array_equal(back.half_tags, im.half_tags) and np.array_equal(back.tags, im.tags)
    assert np.array_equal(back.half_annotated(), im.half_annotated()) and back.half_annotated()[3].tolist() == [True, True]


def test_damaged_half_tags_are_refused(tmp_path):
    st, _ = split_study()
    save_study(st, tmp_path / "s")
    path = tmp_path / "s" / "study.json"
    m = json.loads(path.read_text())
    m["images"][0]["half_tags"] = "uu"
    path.write_text(json.dumps(m))
    with pytest.raises(InputError, match="malformed manifest|half-slice tags"):
        load_study(tmp_path / "s")
    m["images"][0]["half_tags"] = "u" * 12
    m["images"][0]["split"] = {"axis": 2, "at": "5"}
    path.write_text(json.dumps(m))
    with pytest.raises(InputError, match="a split is"):
        load_study(tmp_path / "s")


def test_a_schema_1_study_written_by_the_previous_release_loads_and_splits(tmp_path):
    """tests/data/study-schema1 was written by napari-weakseg 0.1.0 before half-slice tags (schema 1)."""
    assert json.loads((DATA / "study-schema1" / "study.json").read_text())["schema_version"] == 1
    shutil.copytree(DATA / "study-schema1", tmp_path / "old")
    st = load_study(tmp_path / "old")
    im = st.images[0]
    assert im.split is None and "".join(Tag(t).char for t in im.tags) == "aapppu"
    assert im.annotated().tolist() == [False, False, True, True, True, False] and im.volume.data.shape == (2, 6, 12, 10)
    split = split_in_halves(st, im)  # affine diag(1.5, 1, 2): NIfTI i (napari axis 2) is left-right
    assert split == HalfSplit(2, 5)
    assert im.half_tags[:5].tolist() == [[A, A], [A, A], [P, P], [P, P], [P, P]]
    save_study(st)
    again = load_study(tmp_path / "old").images[0]
    assert again.split == split and np.array_equal(again.half_tags, im.half_tags)


# --- tags from masks per half ------------------------------------------------------------------


def test_half_tags_from_masks_known_answer():
    z, y, x = 6, 20, 20
    mask = np.zeros((z, y, x), np.uint8)
    roi = np.zeros((z, y, x), bool)
    roi[:, :, 2:18] = True  # 160 ROI voxels per half-slice of 200
    roi[0, :, 10:] = False  # slice 0: half 1 has no ROI -> unknown
    mask[1, 2:6, 3:8] = 1  # 20 voxels: 12.5 % of half 0's ROI -> presence; half 1 absence
    mask[2, 0, 15] = 1  # 1 voxel < 1 % of 160 -> unknown
    mask[3, 0:2, 12] = 1  # 2 voxels >= 1.6 -> presence
    split = HalfSplit(2, 10)
    tags = half_tags_from_masks(mask, roi, 0, split)
    assert tags.tolist() == [[A, U], [P, A], [A, U], [A, P], [A, A], [A, A]]
    roi[4, :, 2:9] = False  # half 0 of slice 4: 20 of 200 voxels, under 25 %
    assert half_tags_from_masks(mask, roi, 0, split)[4].tolist() == [U, A]
    assert half_tags_from_masks(mask, roi, 0, split, roi_min=0.05)[4].tolist() == [A, A]
    # the area is the ROI's bounding box, not the field of view: a small brain in a large field is kept
    small = np.zeros((2, 40, 40), bool)
    small[:, 15:25, 15:25] = True  # 50 voxels per half: 6 % of a half of the field, 100 % of the box's half
    small[1, 15:25, 20:25] = False
    small[1, 15:17, 20:25] = True  # 10 of 50: 20 % of the box's half
    assert half_tags_from_masks(np.zeros((2, 40, 40), np.uint8), small, 0, HalfSplit(2, 20)).tolist() == [[A, A], [A, U]]


def _affine(cols, origin=(0, 0, 0)) -> np.ndarray:
    a = np.eye(4)
    a[:3, :3] = np.asarray(cols, float).T  # columns: directions of NIfTI i, j, k
    a[:3, 3] = origin
    return a


@pytest.mark.parametrize(
    "cols, lr",
    [
        ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], 2),  # RAS+: i is left-right (napari axis 2)
        ([[-1, 0, 0], [0, -1, 0], [0, 0, 1]], 2),  # LPS-stored (flipped): still i
        ([[0, 1, 0], [-0.9, 0, 0], [0, 0, 1]], 1),  # i runs anterior, j runs left: napari axis 1
        ([[np.cos(0.3), np.sin(0.3), 0], [-np.sin(0.3), np.cos(0.3), 0], [0, 0, 2.5]], 2),  # oblique
    ],
)
def test_left_right_axis_from_the_affine(cols, lr):
    assert left_right_axis(_affine(cols), slice_axis=0) == lr


def test_tags_from_masks_per_half_with_a_permuted_affine_splits_across_the_right_axis():
    st = Study()
    aff = _affine([[0, 1, 0], [-1, 0, 0], [0, 0, 1]])  # napari axis 1 (j) is left-right
    mask = np.zeros((4, 12, 8), np.uint8)
    mask[1, 8:11, 2:5] = 1  # rows 8..10: the second half across axis 1
    im = st.add_image(volume((4, 12, 8), affine=aff), mask=mask)
    roi = np.zeros((4, 12, 8), bool)
    roi[:, 2:12] = True  # extent rows 2..11 -> middle 7
    split = split_in_halves(st, im, roi)
    assert split == HalfSplit(1, 7) and middle_of(roi, 1, (4, 12, 8)) == 7
    tags_from_masks(im, roi)
    assert im.half_tags.tolist() == [[A, A], [A, P], [A, A], [A, A]]


def test_cli_study_create_with_halves(tmp_path):
    rng = np.random.default_rng(0)
    aff = np.diag([-1.0, -1.0, 2.0, 1.0])  # flipped left-right storage
    img = rng.random((16, 10, 5)).astype(np.float32)  # NIfTI (i, j, k)
    lab = np.zeros((16, 10, 5), np.uint8)
    lab[10:14, 3:7, 2] = 1  # k = 2, i >= 8: the second half across i
    brain = np.zeros((16, 10, 5), np.uint8)
    brain[2:14, 1:9, :] = 1  # i 2..13 -> midline at i = 8
    for name, arr in (("t1", img), ("seg", lab), ("brain", brain)):
        nib.save(nib.Nifti1Image(arr, aff), str(tmp_path / f"{name}.nii.gz"))
    out = tmp_path / "study"
    res = subprocess.run(
        [
            str(BIN / "weakseg"),
            "study",
            "create",
            str(out),
            "--image",
            str(tmp_path / "t1.nii.gz"),
            "--mask",
            str(tmp_path / "seg.nii.gz"),
            "--roi-mask",
            str(tmp_path / "brain.nii.gz"),
            "--tags-from-masks",
            "--halves",
            "left-right",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "halves across axis 2 at 8" in res.stderr
    im = load_study(out).images[0]
    assert im.split == HalfSplit(2, 8)
    assert im.half_tags.tolist() == [[A, A], [A, A], [A, P], [A, A], [A, A]]
    show = subprocess.run([str(BIN / "weakseg"), "study", "show", str(out)], capture_output=True, text=True)
    assert show.returncode == 0 and "p-halves" in show.stdout
    assert show.stdout.splitlines()[1].split()[1:] == ["5", "1", "4", "0", "1", "1", "9", "0", "1"]
    bad = subprocess.run(
        [str(BIN / "weakseg"), "study", "create", str(tmp_path / "s2"), "--image", str(tmp_path / "t1.nii.gz"), "--halves-at", "3"],
        capture_output=True,
        text=True,
    )
    assert bad.returncode != 0 and "--halves-at needs --halves" in bad.stderr


def test_keep_masks_per_half():
    st, im = split_study()
    im.mask[1, 1:3, 1:3] = 1
    im.mask[1, 1:3, 6:8] = 1
    im.mask[2, 1:3, 6:8] = 1
    st.mask_painted(im)
    assert im.half_annotated().sum() == 3
    assert keep_masks(st, 1, "half", seed=0) == 1
    assert im.half_annotated().sum() == 1 and im.half_tags[1:3].tolist() == [[P, P], [U, P]]


# --- training rows and stitched prediction ------------------------------------------------------


@pytest.mark.parametrize("flip", [False, True])
def test_training_rows_are_the_tagged_halves(flip):
    st, im = split_study()
    im.mask[1, 1:3, 6:8] = 1
    st.mask_painted(im, [1])
    st.set_tags(im, 1, "absence", half=0)
    st.set_tags(im, 2, "absence")
    norm = Normaliser([0.0], [1.0])
    rows = study_slices(st, norm, None, 1, flip_halves=flip)
    assert len(rows) == 4 and rows.half.tolist() == [0, 0, 1, 1]
    assert rows.source == [(0, 1), (0, 2), (0, 1), (0, 2)]
    assert rows.presence.tolist() == [False, False, True, False] and rows.annotated.tolist() == [False, False, True, False]
    assert rows.images.shape == (4, 1, 8, 5)
    half1 = norm.apply(im.volume.data[:, 1, :, 5:])
    assert torch.allclose(rows.images[2], torch.from_numpy(half1[..., ::-1].copy() if flip else half1))
    assert rows.masks[2, 0].sum() == 4 and rows.masks[2, 0, 1, (3 if flip else 1)] == 1


def test_images_cut_at_other_positions_give_half_slices_of_one_shape_at_native_size():
    """Each brain's midline is its own: halves of images cut at 5 and at 3 (of 10 columns) all come out 7 wide at
    native size, padded on the side away from the cut (the cut stays at the edge the network learnt it at)."""
    st = Study()
    ims = [st.add_image(volume(seed=k), name=f"v{k}") for k in range(2)]
    for im, at in zip(ims, (5, 3), strict=True):
        st.set_split(im, HalfSplit(2, at))
        st.set_tags(im, 0, "absence")
    norm = Normaliser([0.0], [1.0])
    rows = study_slices(st, norm, None, 1)
    assert rows.images.shape == (4, 1, 8, 7) and rows.source == [(0, 0), (0, 0), (1, 0), (1, 0)]
    v1 = norm.apply(ims[1].volume.data[:, 0])  # (1, 8, 10), cut at 3
    assert torch.allclose(rows.images[2, :, :, 4:], torch.from_numpy(v1[..., :3]))  # half 0 ends at the cut
    assert torch.allclose(rows.images[2, 0, :, 0], torch.from_numpy(v1[0, :, 0]))  # edge values away from it
    assert torch.allclose(rows.images[3], torch.from_numpy(v1[..., 3:]))  # half 1: 7 columns from the cut
    v0 = norm.apply(ims[0].volume.data[:, 0])
    assert torch.allclose(rows.images[0, :, :, 2:], torch.from_numpy(v0[..., :5]))


def test_split_across_rows_is_cut_on_the_transpose():
    st = Study()
    im = st.add_image(volume((3, 8, 6)))
    st.set_split(im, HalfSplit(1, 3))  # across axis 1 = the slice's rows
    st.set_tags(im, 0, "absence")
    rows = study_slices(st, Normaliser([0.0], [1.0]), None, 1)
    assert rows.images.shape == (2, 1, 6, 5)  # (W, max(at, H - at)): cut along the last axis of the transpose
    half0 = im.volume.data[0, 0, :3, :].T * 2 - 1  # (6, 3), padded to 5 on the side away from the cut
    assert torch.allclose(rows.images[0, 0, :, 2:], torch.from_numpy(half0))
    assert torch.allclose(rows.images[0, 0, :, 0], torch.from_numpy(half0[:, 0]))  # edge values
    assert torch.allclose(rows.images[1, 0], torch.from_numpy(im.volume.data[0, 0, 3:, :].T * 2 - 1))


@pytest.mark.parametrize("flip, split", [(False, HalfSplit(2, 7)), (True, HalfSplit(2, 7)), (True, HalfSplit(1, 5))])
def test_prediction_on_halves_puts_each_half_back_in_place(tmp_path, flip, split):
    from napari_weakseg.methods import build_method, merge, preset

    torch.manual_seed(0)
    cfg = merge(
        preset("quick", 1),
        {
            "net": {"base": 4, "depth": 2, "max_channels": 8, "code_channels": 4, "unique_channels": 2},
            "input_size": 16,
            "flip_halves": flip,
        },
    )
    method = build_method("genseg", cfg).eval()
    norm = Normaliser([0.0], [1.0])
    vol = np.random.default_rng(1).random((1, 3, 12, 14)).astype(np.float32)
    model = TrainedModel(method, norm, cfg, {"halves": True}, torch.device("cpu"))
    out = model.predict_volume(vol, axis=0, split=split)
    assert out["prob"].shape == (3, 12, 14) and out["healthy"].shape == vol.shape
    s = 1
    sl = vol[:, s][None]  # (1, C, H, W)
    x = sl.swapaxes(-1, -2) if split.axis == 1 else sl
    at = split.at
    n = x.shape[-1]
    width = max(at, n - at)
    for half, part in ((0, x[..., :at]), (1, x[..., at:])):
        if flip and half:
            part = part[..., ::-1]
        pad = width - part.shape[-1]
        outer_left = half == 0 or flip
        part = np.pad(part, [(0, 0)] * 3 + [(pad, 0) if outer_left else (0, pad)], mode="edge")
        ref = _predict(method, norm, cfg, np.ascontiguousarray(part), "cpu")["prob"][0, 0]
        ref = ref[..., pad:] if outer_left else ref[..., : width - pad]
        ref = ref[..., ::-1] if flip and half else ref
        got = out["prob"][s] if split.axis == 2 else out["prob"][s].T
        np.testing.assert_allclose(got[:, :at] if half == 0 else got[:, at:], ref, atol=1e-6)
    whole = predict_slices(method, norm, cfg, sl, "cpu")["prob"]
    assert not np.allclose(whole[0, 0], out["prob"][s])  # halves are not the whole slice


def test_split_for_uses_the_affine_and_the_foreground():
    cfg_info = {"halves": True}
    data = np.zeros((1, 2, 6, 20), np.float32)
    data[:, :, :, 4:16] = 1.0  # foreground columns 4..15 -> midline 10
    vol = Volume(data, np.eye(4))
    model = TrainedModel(None, None, None, cfg_info, torch.device("cpu"))
    assert model.split_for(vol, 0) == HalfSplit(2, 10)
    assert TrainedModel(None, None, None, {}, torch.device("cpu")).split_for(vol, 0) is None


def test_training_on_halves_records_it_and_prediction_stitches_the_study_images_halves(tmp_path):
    from napari_weakseg.data import make_phantom
    from napari_weakseg.training.events import Finished
    from napari_weakseg.training.trainer import TrainConfig, Trainer

    case = make_phantom(shape=(12, 32, 32), channels=1, seed=1)
    st = Study()
    im = st.add_image(case.volume, name="phantom", mask=case.mask)
    split_in_halves(st, im, at=16, axis=2)
    tags_from_masks(im, roi_min=0.0)
    assert (im.half_tags == P).sum() >= 2 and (im.half_tags == A).sum() >= 2
    tiny = {
        "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4},
        "input_size": 32,
        "batch_size": 2,
        "disc_base": 4,
        "augment": False,
        "flip_halves": True,
    }
    cfg = TrainConfig(method="genseg", steps=2, device="cpu", overrides=tiny, val_fraction=0.0)
    trainer = Trainer(st, tmp_path / "run", cfg)
    assert len(trainer.train_set) == int((im.half_tags != U).sum())
    assert isinstance(trainer.run(), Finished)
    model = TrainedModel.load(tmp_path / "run")
    assert model.on_halves and model.config.flip_halves
    out = model.predict_image(im)  # whole slices by default (they scored better on BraTS)
    assert out["prob"].shape == (12, 32, 32) and np.isfinite(out["prob"]).all()
    np.testing.assert_allclose(out["prob"], model.predict_volume(im.volume.data)["prob"])
    stitched = model.predict_image(im, stitch_halves=True)  # the image's own split
    np.testing.assert_allclose(stitched["prob"], model.predict_volume(im.volume.data, split=HalfSplit(2, 16))["prob"])
    assert not np.allclose(stitched["prob"], out["prob"])


def test_whole_images_held_out_for_validation(tmp_path):
    from napari_weakseg.data import make_phantom
    from napari_weakseg.training.events import Finished, Validated
    from napari_weakseg.training.trainer import TrainConfig, Trainer

    st = Study()
    for seed in (1, 2):
        case = make_phantom(shape=(12, 32, 32), channels=1, seed=seed)
        tags_from_masks(st.add_image(case.volume, name=f"p{seed}", mask=case.mask))
    tiny = {
        "net": {"base": 4, "depth": 2, "max_channels": 16, "code_channels": 8, "unique_channels": 4},
        "input_size": 32,
        "batch_size": 2,
        "augment": False,
    }
    events = []
    cfg = TrainConfig(method="seg-only", steps=2, device="cpu", overrides=tiny, val_images=["p2"], val_every=2)
    trainer = Trainer(st, tmp_path / "run", cfg, on_event=events.append)
    assert {i for i, _ in trainer.train_set.source} == {0}
    assert {i for i, _ in trainer.val_set.source} == {1} and len(trainer.val_set) == int(st.images[1].annotated().sum())
    assert isinstance(trainer.run(), Finished) and any(isinstance(e, Validated) for e in events)
    with pytest.raises(InputError, match="nothing is left to train on"):
        Trainer(st, tmp_path / "run2", TrainConfig(method="seg-only", steps=1, device="cpu", overrides=tiny, val_images=["p1", "p2"]))
    with pytest.raises(InputError, match="no image named 'p9'"):
        Trainer(st, tmp_path / "run3", TrainConfig(method="seg-only", steps=1, device="cpu", overrides=tiny, val_images=["p9"]))
