"""The core of the correct-and-retrain loop: accepting masks (undoable) and suggesting slices."""

import numpy as np
import pytest

from napari_weakseg.errors import InputError
from napari_weakseg.io.case import Volume
from napari_weakseg.study import Study, Tag
from napari_weakseg.suggest import slice_uncertainty, suggest_slices


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


def test_entropy_per_slice_and_suggestions_most_uncertain_first():
    prob = np.zeros((5, 4, 4))
    prob[0] = 0.5  # 1 bit everywhere
    prob[1] = 0.9
    prob[2] = 0.99
    prob[3] = 0.5
    prob[4] = 0.7
    h = slice_uncertainty(prob)
    assert h[0] == pytest.approx(1.0) and h[1] == pytest.approx(0.469, abs=1e-3) and h[2] < h[1]
    st, im = small_study()
    st.set_tags(0, [0, 1, 2, 4], Tag.PRESENCE)
    st.set_tags(0, [3], Tag.ABSENCE)
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, 0, 0] = 1
    st.accept_masks(0, [0], mask)  # slice 0 is annotated now: not suggested
    ranked = suggest_slices(im, prob)
    assert [s for s, _ in ranked] == [4, 1, 2]  # presence, unannotated; absence slice 3 never
    assert ranked[0][1] == pytest.approx(h[4])
