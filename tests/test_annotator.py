"""The simulated annotator: the dock's loop (train, predict, choose a slice, accept the truth, retrain) on a
phantom, real training processes with a tiny network and a few steps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_training import TINY

from napari_weakseg.annotator import (
    TOP,
    LoopSettings,
    SimulatedAnnotator,
    candidates,
    choose_next,
    dice,
    slice_dice,
    spread_slices,
)
from napari_weakseg.errors import InputError
from napari_weakseg.study import Study, Tag, save_study
from napari_weakseg.study.build import keep_masks, tags_from_masks
from napari_weakseg.suggest import suggest_slices


@pytest.fixture
def phantom():
    """24 slices, 10 of them with a lesion."""
    from napari_weakseg.data import make_phantom

    return make_phantom(shape=(24, 48, 48), channels=2, n_lesions=5, seed=3)


def _study(folder, phantom):
    """The phantom as a user tags it (tags from the masks in the head), every mask erased."""
    st = Study()
    im = st.add_image(phantom.volume, name="ph", mask=phantom.mask.copy())
    tags_from_masks(im, phantom.head)
    keep_masks(st, 0)
    save_study(st, folder)
    return phantom.mask > 0


def test_scores_and_starting_slices():
    a = np.zeros((3, 4, 4), bool)
    b = np.zeros((3, 4, 4), bool)
    a[0, :2], b[0, :1] = True, True  # 8 and 4 pixels, 4 shared
    a[1, 0, 0] = True  # a false positive on a slice with no lesion
    assert dice(a, b) == pytest.approx(2 * 4 / (9 + 4))
    assert slice_dice(a, b).tolist() == pytest.approx([2 * 4 / 12, 0.0, 1.0])
    assert dice(np.zeros(3, bool), np.zeros(3, bool)) == 1.0
    assert spread_slices(np.arange(10, 20), 1) == [15]
    assert spread_slices(np.arange(10, 20), 2) == [12, 17]
    with pytest.raises(InputError, match="only 3 presence"):
        spread_slices(np.arange(3), 4)


def test_each_strategy_picks_an_unannotated_presence_slice(tmp_path, phantom):
    truth = _study(tmp_path / "s", phantom)
    ann = SimulatedAnnotator(tmp_path / "s", truth)
    im = ann.image
    left = candidates(im)
    assert len(left) > 3 and (im.tags[left] == Tag.PRESENCE).all()
    ann.paint([int(left[0])])
    assert int(left[0]) not in candidates(im).tolist()
    rng = np.random.default_rng(0)
    prob = np.where(truth, 0.99, 0.0).astype(np.float32)  # confident and right, but on one slice
    worst = int(candidates(im)[2])
    prob[worst] = 0.0  # the model misses that slice's lesion entirely
    assert choose_next("oracle", im, prob, truth, 0.5, rng) == worst
    prob[worst] = np.where(truth[worst], 0.4, 0.0)  # a faint guess below the threshold: nothing predicted there
    assert choose_next("suggest", im, prob, truth, 0.5, rng) == suggest_slices(im, prob, 1)[0][0] == worst
    assert choose_next("random", im, prob, truth, 0.5, rng) in candidates(im).tolist()
    order = [int(left[0]), int(left[3]), int(left[1])]  # the first is painted already: skipped
    assert choose_next("replay", im, prob, truth, 0.5, rng, order) == int(left[3])
    with pytest.raises(InputError, match="unknown strategy"):
        choose_next("best", im, prob, truth, 0.5, rng)


def test_the_loop_trains_like_the_dock_and_paints_the_truth(tmp_path, phantom):
    truth = _study(tmp_path / "s", phantom)
    settings = LoopSettings("seg-only", steps=3, retrain_steps=2, device="cpu", overrides=TINY)
    ann = SimulatedAnnotator(tmp_path / "s", truth, settings)
    start = spread_slices(candidates(ann.image), 1)
    ann.paint(start)
    seen = []
    rounds = ann.run("oracle", 2, on_round=seen.append)
    assert len(rounds) == len(seen) == 3
    assert [len(r.painted) for r in rounds] == [1, 2, 3]
    assert rounds[0].painted == start and rounds[1].painted == sorted([*start, rounds[0].next_slice])
    first, second = (json.loads((tmp_path / "s" / "runs" / f"seg-only-round0{i}" / "run.json").read_text()) for i in (0, 1))
    assert first["train_config"]["steps"] == 3 and second["train_config"]["steps"] == 2  # Train, then Retrain
    assert first["train_config"]["val_fraction"] == 0.0  # the dock's default below 10 masks
    assert second["started_from"] == {"run": rounds[0].run_dir, "how": "warm-started"}  # warm start from the last round
    from napari_weakseg.study import load_study

    saved = load_study(tmp_path / "s").images[0]  # the study on disk holds the painted truth, nothing else
    painted = rounds[-1].painted  # the last round trains on them and chooses nothing
    assert np.flatnonzero(saved.annotated()).tolist() == painted and rounds[-1].next_slice is None
    assert np.array_equal(saved.mask[painted] > 0, truth[painted]) and not saved.mask[~np.isin(np.arange(24), painted)].any()
    for r in rounds:
        assert 0.0 <= r.dice <= 1.0 and 0.0 <= r.dice_unpainted <= 1.0 and r.train_s > 0
        left = 10 - len(r.painted)  # the phantom's presence slices not painted yet
        assert 0 <= r.worst_in_top <= min(TOP, left) and r.worst_by_chance == pytest.approx(min(TOP, left) ** 2 / left)
        assert 0 <= r.errors_in_top <= min(TOP, left)


def test_a_branch_continues_in_its_own_folder(tmp_path, phantom):
    truth = _study(tmp_path / "s", phantom)
    ann = SimulatedAnnotator(tmp_path / "s", truth, LoopSettings("seg-only", steps=2, retrain_steps=2, device="cpu", overrides=TINY))
    ann.paint(spread_slices(candidates(ann.image), 1))
    ann.run("suggest", 0)
    other = ann.branch(tmp_path / "b")
    assert other.last_run == tmp_path / "b" / "runs" / "seg-only-round00" and (other.last_run / "best.pt").is_file()
    other.run("random", 1)
    assert len(other.rounds) == 2 and len(ann.rounds) == 1
    assert not (tmp_path / "s" / "runs" / "seg-only-round01").exists()  # the original is untouched
    assert ann.study.counts()["annotated"] == 1 and other.study.counts()["annotated"] == 2
    with pytest.raises(InputError, match="exists"):
        ann.branch(tmp_path / "b")


def test_the_working_size_follows_the_slices():
    """``dock_input_size``: at most 2.5x downsampling, the preset's size at least, 128 at most, a multiple of
    2^depth; the paper preset (native) and no study keep the preset's."""
    from napari_weakseg.methods import method_preset
    from napari_weakseg.training.dock_defaults import dock_input_size

    quick, paper = method_preset("genseg", "quick"), method_preset("genseg", "paper")
    sizes = {side: dock_input_size(quick, side) for side in (28, 96, 160, 240, 256, 512)}
    assert sizes == {28: 64, 96: 64, 160: 64, 240: 96, 256: 104, 512: 128}
    assert all(s % 2**quick.net.depth == 0 for s in sizes.values())
    assert dock_input_size(quick, None) == 64 and dock_input_size(paper, 240) is None


def test_the_wide_candidate_weighs_the_list_further_from_the_painted_slices(tmp_path):
    """suggest-wide (``WIDE_SPREAD``): a big miss two slices from a painted one loses to a smaller miss far away,
    which the dock's list (``SUGGEST_SPREAD``) ranks second."""
    from napari_weakseg.annotator import WIDE_SPREAD
    from napari_weakseg.io.volume import Volume
    from napari_weakseg.training.dock_defaults import SUGGEST_SPREAD

    assert WIDE_SPREAD > SUGGEST_SPREAD
    truth = np.zeros((30, 16, 16), bool)
    truth[10, 4:12, 4:12] = True  # the painted slice
    truth[12, 2:12, 2:10] = True  # 80 px, two slices away
    truth[25, 5:10, 5:10] = True  # 25 px, fifteen slices away
    st = Study()
    data = np.random.default_rng(0).normal(size=(1, *truth.shape)).astype(np.float32)
    im = st.add_image(Volume(data), name="v", mask=np.zeros(truth.shape, np.uint8))
    im.tags[:] = Tag.PRESENCE
    save_study(st, tmp_path / "s")
    ann = SimulatedAnnotator(tmp_path / "s", truth)
    ann.paint([10])
    prob = np.where(truth, 0.4, 0.0).astype(np.float32)  # both missed, faintly
    prob[10] = truth[10]
    rng = np.random.default_rng(0)
    assert choose_next("suggest", ann.image, prob, truth, 0.5, rng) == 12
    assert choose_next("suggest-wide", ann.image, prob, truth, 0.5, rng) == 25
