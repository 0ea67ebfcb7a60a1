"""Files stored in different orientations overlay as layers: one is shown in the other's voxel axes.

napari draws a layer's data axes on the viewer's axes one to one (a permuted affine is "non-orthogonal
slicing", which it does not draw), and the anatomical views are set for the whole viewer
(``io.orientation``). So a volume stored RAS beside one stored LPS, or a sagittal acquisition beside an
axial one, only overlays when its voxels are shown in the other's axis order and directions. Here that is a
*view* of its array (numpy flips and a transpose: nothing is copied, painting writes through), with the affine
of what is shown; the file's own affine and header are kept, so writing the layer back puts its voxels on its
own grid exactly (``to_storage``).

Arrays are in napari order (Z, Y, X): the NIfTI (i, j, k) reversed; affines are NIfTI (i, j, k) -> RAS mm.
"""

from __future__ import annotations

import numpy as np

IDENTITY = np.array([[0, 1], [1, 1], [2, 1]], float)


def frame_transform(affine: np.ndarray, ref_affine: np.ndarray) -> np.ndarray | None:
    """The nibabel orientation transform ((3, 2): target axis, flip, per NIfTI axis) that shows a volume
    with ``affine`` in the voxel axes of one with ``ref_affine`` (their closest axes, for oblique ones);
    None when they already share them."""
    import nibabel as nib

    io = nib.orientations.io_orientation
    t = nib.orientations.ornt_transform(io(np.asarray(affine, float)), io(np.asarray(ref_affine, float)))
    return None if np.array_equal(t, IDENTITY) else t


def in_frame(data: np.ndarray, affine: np.ndarray, transform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the view of ``data`` (Z, Y, X) under ``transform``, the affine of that view); no voxel is copied."""
    import nibabel as nib

    nifti = np.asarray(data).T  # (i, j, k): a view
    shown = nib.orientations.apply_orientation(nifti, transform)
    return shown.T, np.asarray(affine, float) @ nib.orientations.inv_ornt_aff(transform, nifti.shape)


def to_storage(data: np.ndarray, shown_affine: np.ndarray, stored_affine: np.ndarray) -> np.ndarray:
    """``data`` (Z, Y, X) as shown (``shown_affine``) back in the axes of the file (``stored_affine``)."""
    back = frame_transform(shown_affine, stored_affine)
    return np.asarray(data) if back is None else in_frame(data, shown_affine, back)[0]
