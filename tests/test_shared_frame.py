"""Files stored in different orientations shown in one set of voxel axes (``io.shared_frame``): the view is the
other file's voxels exactly, with its affine; nothing is copied; the way back gives the file's own voxels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_orientation import STORAGE, ras_volume, stored_as

from napari_weakseg.io.nifti import to_napari_order
from napari_weakseg.io.shared_frame import frame_transform, in_frame, to_storage


def napari_stored(code):
    stored, affine = stored_as(code, ras_volume())
    return to_napari_order(stored), affine


@pytest.mark.parametrize(("code", "ref_code"), list(itertools.permutations(STORAGE[:5], 2)))
def test_a_volume_shown_in_another_orientations_axes_is_that_files_voxels(code, ref_code):
    data, affine = napari_stored(code)
    ref, ref_affine = napari_stored(ref_code)
    transform = frame_transform(affine, ref_affine)
    assert transform is not None
    shown, shown_affine = in_frame(data, affine, transform)
    assert np.array_equal(shown, ref) and np.allclose(shown_affine, ref_affine)
    assert np.shares_memory(shown, data)  # a view: painting it writes the layer's own array
    back = to_storage(shown, shown_affine, affine)
    assert np.array_equal(back, data) and np.shares_memory(back, data)


def test_volumes_of_one_orientation_need_no_transform():
    _, affine = napari_stored("LPS")
    shifted = affine.copy()
    shifted[:3, 3] += [10.0, -4.0, 2.5]  # another grid, the same axes
    assert frame_transform(affine, shifted) is None


def test_a_view_can_be_painted_and_the_file_axes_see_it():
    data, affine = napari_stored("RAS")
    _, ref_affine = napari_stored("PSR")
    shown, shown_affine = in_frame(data, affine, frame_transform(affine, ref_affine))
    shown[1, 2, 3] = 42.0
    assert (data == 42.0).sum() == 1 and to_storage(shown, shown_affine, affine)[data == 42.0] == 42.0


def test_a_cropped_file_of_another_orientation_lands_where_its_anatomy_is():
    """A RAS file holding only part of the head (another grid) beside the whole head stored LPS: once shown in the
    LPS axes, napari's scale and translation put each of its voxels at the world position of the same voxel."""
    from napari_weakseg.io.layer_geometry import header_for
    from napari_weakseg.io.nifti import spacing_from_header
    from napari_weakseg.io.orientation import world_translate

    ref, ref_affine = napari_stored("LPS")
    whole, affine = stored_as("RAS", ras_volume())
    crop = whole[1:, 2:, 3:]  # (i, j, k) from voxel (1, 2, 3) on
    crop_affine = affine.copy()
    crop_affine[:3, 3] = (affine @ [1, 2, 3, 1])[:3]
    shown, shown_affine = in_frame(to_napari_order(crop), crop_affine, frame_transform(crop_affine, ref_affine))
    scale = np.asarray(spacing_from_header(header_for(shown_affine, shown.shape)))
    world = np.asarray(world_translate(shown_affine)) + scale * np.argwhere(shown == shown.max())[0]
    ref_world = (
        np.asarray(world_translate(ref_affine))
        + np.asarray(spacing_from_header(header_for(ref_affine, ref.shape))) * np.argwhere(ref == shown.max())[0]
    )
    assert np.allclose(world, ref_world)
