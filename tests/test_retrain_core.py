"""The core of the correct-and-retrain loop: accepting masks (undoable) and suggesting slices."""

import numpy as np
import pytest

from napari_weakseg.errors import InputError
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, Tag
from napari_weakseg.suggest import expected_dice, slice_uncertainty, suggest_slices, suggestions


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
    """Expected wrong pixels plus the lesion likely missed beyond the predicted lesion's body."""
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
    listed = suggestions(im, prob)
    assert [x.slice for x in listed] == [2, 4, 3, 1]
    # slice 2: its own expected errors (0.4 x 4 + 0.01 x 12) and the 4 px its neighbour 1 shows
    assert listed[0].score == pytest.approx(1.72 + 4)
    assert listed[0].reason == "presence tag, nothing predicted: about 4 px likely missed (1 slice(s) beyond the predicted lesion)"
    assert listed[1].score == pytest.approx(0.4 * 4 + 0.3 * 4 + 8 * 0.01)
    assert listed[1].reason == f"presence: about 3 px likely wrong, expected Dice {edice[4]:.2f}"
    assert listed[2].reason == "absence tag, 2 px predicted" and listed[2].score == 2
    assert [s for s, _ in suggest_slices(im, prob)] == [2, 4, 1]  # presence only: what the annotator paints


def test_missed_presence_slices_next_to_the_predicted_lesion_come_first():
    st = Study()
    im = st.add_image(Volume(np.zeros((1, 9, 4, 4), np.float32)), name="v")
    st.set_tags(0, range(1, 9), Tag.PRESENCE)
    prob = np.zeros((9, 4, 4))
    prob[7:, :2] = 0.9  # found on slices 7 and 8 (8 px), missed with confidence on 1..6
    ranked = suggestions(im, prob)
    assert [x.slice for x in ranked[:3]] == [6, 5, 4] and ranked[0].score == pytest.approx(8 + 0.1 * 0)
    assert "about 8 px likely missed (1 slice(s) beyond the predicted lesion)" in ranked[0].reason
    blank = suggestions(im, np.zeros((9, 4, 4)))  # nothing predicted anywhere: the middle of the run first
    assert [x.slice for x in blank[:2]] == [4, 5] and blank[0].reason == "presence tag, nothing predicted (one of 8 in a row)"
