"""The core of the correct-and-retrain loop: accepting masks (undoable) and suggesting slices."""

import numpy as np
import pytest

from napari_weakseg.errors import InputError
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, Tag
from napari_weakseg.suggest import expected_dice, slice_uncertainty, suggest_slices, suggestions
from napari_weakseg.training.dock_defaults import SUGGEST_SPREAD


def small_study():
    st = Study()
    im = st.add_image(Volume(np.zeros((1, 5, 4, 4), np.float32)), name="v")
    return st, im


def test_accept_masks_sets_annotation_tags_and_is_undoable():
    st, im = small_study()
    st.set_tags(0, [0, 1], Tag.PRESENCE)
    lesion = np.zeros((4, 4), np.uint8)
    lesion[1:3, 1:3] = 1
    st.accept_masks(0, [3, 1], np.stack([np.zeros((4, 4), np.uint8), lesion]))  # any order of slices
    assert im.tags.tolist() == [Tag.PRESENCE, Tag.PRESENCE, Tag.UNKNOWN, Tag.ABSENCE, Tag.UNKNOWN]
    assert np.array_equal(im.mask[1], lesion) and im.annotated().tolist() == [False, True, False, False, False]
    assert st.undo()
    assert im.tags.tolist() == [Tag.PRESENCE, Tag.PRESENCE, 0, 0, 0] and not im.mask.any()
    with pytest.raises(InputError, match="one mask"):
        st.accept_masks(0, [1, 1], np.stack([lesion, lesion]))
    with pytest.raises(InputError, match="one mask"):
        st.accept_masks(0, [1], np.zeros((1, 3, 3)))


def test_entropy_per_slice():
    prob = np.zeros((3, 4, 4))
    prob[0], prob[1], prob[2] = 0.5, 0.9, 0.99
    h = slice_uncertainty(prob)
    assert h[0] == pytest.approx(1.0) and h[1] == pytest.approx(0.469, abs=1e-3) and h[2] < h[1]


def test_suggestions_rank_the_pixels_likely_wrong_and_say_why():
    """The expected wrong pixels per slice; absence slices with lesion predicted; the reason of each."""
    st = Study()
    im = st.add_image(Volume(np.zeros((1, 6, 4, 4), np.float32)), name="v")
    st.set_tags(0, [0, 1, 2, 4], Tag.PRESENCE)
    st.set_tags(0, [3], Tag.ABSENCE)  # slice 5 stays untagged
    prob = np.full((6, 4, 4), 0.01)
    prob[1, :1] = 0.99  # a confident lesion of 4 px: few pixels likely wrong
    prob[2, :1] = 0.4  # a faint one the threshold drops: nothing predicted on a presence slice
    prob[3, 0, :2] = 0.9  # lesion predicted on an absence slice
    prob[4, 0], prob[4, 1] = 0.6, 0.3  # an uncertain one
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, 0, 0] = 1
    st.accept_masks(0, [0], mask)  # slice 0 is annotated now: never suggested
    edice, mass, area = expected_dice(prob)
    assert edice[4] == pytest.approx(2 * 0.6 * 4 / (0.6 * 4 + 0.3 * 4 + 8 * 0.01 + 4))
    assert edice[5] == 1.0 and area[2] == 0 and mass[2] == pytest.approx(1.6 + 0.12)
    listed = suggestions(im, prob, spread=0.0)  # unweighed by the distance to painted slices
    # the most wrong pixels (4, then the absence slice 3, 2, 1), every other place the lowest expected Dice (2, 4, 1)
    assert [x.slice for x in listed] == [4, 2, 3, 1]
    assert listed[0].score == pytest.approx(0.4 * 4 + 0.3 * 4 + 8 * 0.01)  # the expected wrong pixels
    assert listed[0].reason == f"presence: about 3 px likely wrong, expected Dice {edice[4]:.2f}"
    assert listed[1].score == pytest.approx(1.72) and listed[1].reason == "presence: expected Dice 0.00, likely failing (about 2 px wrong)"
    assert listed[2].reason == "absence tag, 2 px predicted" and listed[2].score == 2
    assert [s for s, _ in suggest_slices(im, prob)] == [4, 2, 1]  # presence only: what the annotator paints


def test_with_nothing_predicted_the_middle_of_the_presence_slices_comes_first():
    st = Study()
    im = st.add_image(Volume(np.zeros((1, 9, 4, 4), np.float32)), name="v")
    st.set_tags(0, range(1, 9), Tag.PRESENCE)
    blank = suggestions(im, np.zeros((9, 4, 4)))
    assert [x.slice for x in blank[:2]] == [4, 5] and blank[0].reason == "presence tag, nothing predicted (one of 8 in a row)"


def test_spread_weighs_the_suggestions_away_from_painted_slices():
    st = Study()
    im = st.add_image(Volume(np.zeros((1, 12, 4, 4), np.float32)), name="v")
    st.set_tags(0, range(12), Tag.PRESENCE)
    lesion = np.zeros((1, 4, 4), np.uint8)
    lesion[0, 1:3, 1:3] = 1
    st.accept_masks(0, [5], lesion)
    prob = np.full((12, 4, 4), 0.01)
    prob[4, :2] = 0.5  # the slice with the most pixels likely wrong, next to the painted one
    prob[10, :2] = 0.4  # fewer, far from it
    assert suggest_slices(im, prob, 1, spread=0.0)[0][0] == 4
    assert suggest_slices(im, prob, 1, spread=3.0)[0][0] == 10
    assert suggest_slices(im, prob, 12, spread=SUGGEST_SPREAD) == suggest_slices(im, prob, 12)  # the dock's default
    near = next(x for x in suggestions(im, prob, 12) if x.slice == 4)
    assert "near a painted slice (x0.28)" in near.reason and "about 4 px likely wrong" in near.reason  # the pixels themselves
