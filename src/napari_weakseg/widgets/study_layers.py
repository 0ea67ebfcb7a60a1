"""Between napari layers and the Study: build a study image from layers, show a study image as layers."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io.case import Volume
from ..io.layer_geometry import affine_from_metadata, header_for
from ..io.napari_io import nifti_metadata
from ..io.nifti import spacing_from_header
from ..study.model import StudyImage


def volume_from_layers(image_layers, labels_layer=None) -> tuple[Volume, np.ndarray | None]:
    """Stack image layers of one grid as channels; take a labels layer as the initial mask.

    Returns ``(volume, mask)``: volume data (C, Z, Y, X) float32; mask (Z, Y, X) or None.
    2D layers become a volume of one slice.
    """
    if not image_layers:
        raise InputError("select one or more image layers (several = channels of one case)")
    arrays = []
    for layer in image_layers:
        if getattr(layer, "rgb", False):
            raise InputError(f"{layer.name}: RGB images are not supported; convert to greyscale first")
        arr = np.asarray(layer.data, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise InputError(f"{layer.name}: expected a 2D or 3D image; got {arr.ndim}D {arr.shape}")
        arrays.append(arr)
    first = image_layers[0]
    for layer, arr in zip(image_layers[1:], arrays[1:], strict=False):
        if arr.shape != arrays[0].shape:
            raise InputError(f"{layer.name}: shape {arr.shape} differs from {first.name} {arrays[0].shape}; channels must share one grid")
    data = np.stack(arrays)
    if not np.isfinite(data).all():
        n_bad = int((~np.isfinite(data)).sum())
        raise InputError(f"{first.name}: {n_bad} NaN/Inf voxel(s); reopen the file with this plugin's reader, which replaces them")
    info = first.metadata.get("weakseg", {})
    scale = tuple(abs(float(s)) for s in first.scale[-3:]) if first.ndim >= 3 else (1.0, *(abs(float(s)) for s in first.scale[-2:]))
    header = info.get("header")
    if header is not None and tuple(header.get_data_shape()[:3]) != data.shape[1:][::-1]:
        header = None
    affine = info.get("affine") if header is not None else np.diag([*scale[::-1], 1.0])
    other = affine_from_metadata(first.metadata) if not info and first.ndim == 3 else None
    if other is not None:  # a layer of another NIfTI / ITK reader: its geometry, so masks overlay the source
        affine, header = other, header_for(other, data.shape[1:])
        scale = spacing_from_header(header)
    volume = Volume(data, np.asarray(affine), header, scale, [layer.name for layer in image_layers], list(info.get("sources", [])))
    mask = None
    if labels_layer is not None:
        mask = np.array(labels_layer.data)  # a copy: the user's layer stays theirs
        if mask.ndim == 2:
            mask = mask[None]
        if mask.shape != volume.shape:
            raise InputError(f"{labels_layer.name}: mask shape {mask.shape} does not match the image shape {volume.shape}")
    return volume, mask


def plain_transform(layer) -> bool:
    """Whether a layer is drawn by positive scales and a translation only (what the study's own layers and the
    anatomical views assume); layers of other readers may carry rotations, flips or a full affine."""
    eye = np.eye(layer.ndim)
    return (
        bool(np.all(np.asarray(layer.scale) > 0))
        and np.allclose(layer.rotate, eye)
        and np.allclose(layer.shear, 0)
        and np.allclose(layer.affine.affine_matrix, np.eye(layer.ndim + 1))
    )


def add_layers(viewer, im: StudyImage):
    """Add image layers (one per channel) and the editable mask layer for ``im``.

    The mask layer's data *is* ``im.mask`` (no copy), so painting edits the study.
    Returns ``(image_layers, mask_layer)``.
    """
    v = im.volume
    meta = nifti_metadata(v.affine, v.header, v.sources)
    image_layers = []
    for c, name in enumerate(v.channel_names):
        layer = viewer.add_image(
            v.data[c],
            name=f"{im.name} {name}" if name != im.name else name,
            scale=v.spacing,
            colormap="gray",
            metadata=meta,
            visible=c == 0,
        )
        image_layers.append(layer)
    mask_layer = viewer.add_labels(im.mask, name=f"{im.name} mask", scale=v.spacing, metadata=meta, opacity=0.6)
    return image_layers, mask_layer
