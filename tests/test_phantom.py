"""The synthetic phantom: deterministic, consistent tags, visible lesions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_weakseg.data import make_phantom
from napari_weakseg.study import Tag

SMALL = {"shape": (16, 48, 48), "spacing": (3.0, 1.5, 1.5)}


def test_deterministic_by_seed():
    a = make_phantom(**SMALL, channels=2, seed=5)
    b = make_phantom(**SMALL, channels=2, seed=5)
    np.testing.assert_array_equal(a.volume.data, b.volume.data)
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_array_equal(a.tags, b.tags)
    np.testing.assert_array_equal(a.head, b.head)
    c = make_phantom(**SMALL, channels=2, seed=6)
    assert not np.array_equal(a.mask, c.mask)
    assert not np.array_equal(a.volume.data, c.volume.data)


def test_fixture_phantom_shapes(phantom):
    v = phantom.volume
    assert v.data.shape == (2, 16, 48, 48) and v.data.dtype == np.float32
    assert v.shape == (16, 48, 48)
    assert v.channel_names == ["flair", "t1c"]
    assert phantom.mask.shape == (16, 48, 48) and phantom.mask.dtype == np.uint8
    assert set(np.unique(phantom.mask)) <= {0, 1}
    assert phantom.tags.shape == (16,) and phantom.tags.dtype == np.uint8
    assert phantom.head.shape == (16, 48, 48) and phantom.head.dtype == bool
    assert np.isfinite(v.data).all()


def test_default_shape_geometry_and_channels():
    case = make_phantom(seed=0)
    assert case.volume.data.shape == (1, 32, 96, 96)
    assert case.volume.channel_names == ["flair"]
    assert case.volume.spacing == (3.0, 1.5, 1.5)
    np.testing.assert_array_equal(case.volume.affine, np.diag([1.5, 1.5, 3.0, 1.0]))  # NIfTI (i, j, k) = (X, Y, Z)
    assert case.volume.header is None
    assert case.mask.any()
    custom = make_phantom(shape=(8, 20, 24), spacing=(2.0, 0.5, 0.25), n_lesions=1, seed=2)
    assert custom.volume.data.shape == (1, 8, 20, 24)
    np.testing.assert_array_equal(custom.volume.affine, np.diag([0.25, 0.5, 2.0, 1.0]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tags_consistent_with_mask(seed):
    case = make_phantom(**SMALL, n_lesions=3, seed=seed)
    in_head = case.head.any(axis=(1, 2))
    has_lesion = case.mask.any(axis=(1, 2))
    tags = case.tags
    np.testing.assert_array_equal(tags == Tag.PRESENCE, has_lesion & in_head)
    np.testing.assert_array_equal(tags == Tag.ABSENCE, ~has_lesion & in_head)
    np.testing.assert_array_equal(tags == Tag.UNKNOWN, ~in_head)
    # lesions lie inside the head, so no lesion slice is unknown
    assert not (case.mask.astype(bool) & ~case.head).any()
    assert not (has_lesion & ~in_head).any()
    # the first and last slices are outside the head; there are all three kinds of tags
    assert tags[0] == Tag.UNKNOWN and tags[-1] == Tag.UNKNOWN
    assert (tags == Tag.PRESENCE).any() and (tags == Tag.ABSENCE).any()


def test_no_lesions():
    case = make_phantom(**SMALL, n_lesions=0, seed=4)
    assert not case.mask.any()
    assert not (case.tags == Tag.PRESENCE).any()
    in_head = case.head.any(axis=(1, 2))
    np.testing.assert_array_equal(case.tags == Tag.ABSENCE, in_head)


def test_background_is_zero_without_noise():
    case = make_phantom(**SMALL, noise=0.0, channels=2, seed=1)
    assert (case.volume.data[:, ~case.head] == 0).all()
    assert (case.volume.data[:, case.head] != 0).mean() > 0.99


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_lesions_are_brighter_than_the_tissue_around(seed):
    case = make_phantom(**SMALL, n_lesions=3, seed=seed)
    flair = case.volume.data[0]
    lesion = case.mask.astype(bool)
    assert lesion.sum() > 20
    around = ndi.binary_dilation(lesion, iterations=3) & ~ndi.binary_dilation(lesion, iterations=1) & case.head
    assert around.sum() > lesion.sum() / 2
    assert flair[lesion].mean() > flair[around].mean() + 0.15
    # brighter than brain tissue as a whole, too
    brain = case.head & ~lesion
    assert flair[lesion].mean() > np.median(flair[brain]) + 0.15


def test_t1c_lesions_have_an_enhancing_rim():
    case = make_phantom(**SMALL, channels=2, n_lesions=3, noise=0.02, seed=1)
    t1c = case.volume.data[1]
    lesion = case.mask.astype(bool)
    rim = lesion & ~ndi.binary_erosion(lesion, iterations=2)
    around = ndi.binary_dilation(lesion, iterations=3) & ~lesion & case.head
    assert rim.any()
    assert t1c[rim].mean() > t1c[around].mean() + 0.3


def test_small_phantoms_still_get_consistent_lesions():
    case = make_phantom(shape=(8, 20, 24), n_lesions=2, seed=3)
    assert case.mask.any()
    assert not (case.mask.astype(bool) & ~case.head).any()
    np.testing.assert_array_equal(case.tags == Tag.PRESENCE, case.mask.any(axis=(1, 2)))
    with pytest.raises(ValueError, match=r"phantom shape \(2, 3, 3\) is too small to hold lesions"):
        make_phantom(shape=(2, 3, 3), n_lesions=1)
    assert not make_phantom(shape=(2, 3, 3), n_lesions=0).mask.any()
