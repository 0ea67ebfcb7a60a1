"""Resampling a volume onto another's grid through their affines (world positions matched voxel by voxel):
what channels from different acquisitions need before they can be stacked, when the user asks for it.

Each target voxel takes the source's value at the same world (RAS mm) position: linear interpolation for
images (``linear``), the nearest voxel for labels (``nearest``); outside the source's field of view, 0.
"""

from __future__ import annotations

import numpy as np

from ..errors import InputError

INTERPOLATIONS = {"nearest": 0, "linear": 1}


def resample_onto(volume, target, interpolation: str = "linear"):
    """``volume`` (a :class:`~napari_weakseg.io.case.Volume`) on ``target``'s grid: data (C, Z, Y, X) of the
    target's shape, the target's affine, header and spacing; the source's channel names and files."""
    from scipy import ndimage as ndi

    from .nifti import to_napari_order, to_nifti_order
    from .volume import Volume

    if interpolation not in INTERPOLATIONS:
        raise InputError(f"interpolation must be one of {', '.join(INTERPOLATIONS)}; got {interpolation!r}")
    if volume.header is None or target.header is None:
        raise InputError("resampling needs both images' orientation (NIfTI or DICOM files); these have none")
    m = np.linalg.inv(np.asarray(volume.affine, float)) @ np.asarray(target.affine, float)  # target ijk -> source ijk
    shape = tuple(target.shape)[::-1]  # NIfTI order (i, j, k)
    order = INTERPOLATIONS[interpolation]
    channels = [
        ndi.affine_transform(to_nifti_order(c), m[:3, :3], offset=m[:3, 3], output_shape=shape, order=order, mode="constant", cval=0.0)
        for c in volume.data
    ]
    data = np.stack([to_napari_order(c) for c in channels]).astype(np.float32)
    return Volume(data, target.affine, target.header, target.spacing, list(volume.channel_names), list(volume.sources), target.oriented)
