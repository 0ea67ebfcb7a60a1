"""Between napari layers and the Study: build a study image from layers, show a study image as layers."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from ..io.case import Volume
from ..io.layer_geometry import affine_from_metadata, header_for
from ..io.napari_io import nifti_metadata
from ..io.nifti import spacing_from_header
from ..io.orientation import layer_translate
from ..study.model import StudyImage


class GridMismatch(InputError):
    """Image layers chosen as channels lie on different grids; ``can_resample``: both know their geometry."""

    def __init__(self, message: str, can_resample: bool):
        super().__init__(message)
        self.can_resample = can_resample


def layer_volume(layer, arr: np.ndarray) -> Volume:
    """One image layer (its data ``arr`` (Z, Y, X) float32) as a one-channel Volume with the geometry it carries:
    this plugin's metadata (the file's affine and header), another reader's (``io.layer_geometry``), or its scale."""
    info = layer.metadata.get("weakseg", {})
    scale = tuple(abs(float(s)) for s in layer.scale[-3:]) if layer.ndim >= 3 else (1.0, *(abs(float(s)) for s in layer.scale[-2:]))
    header = info.get("header")
    if header is not None and tuple(header.get_data_shape()[:3]) != arr.shape[::-1]:
        header = None
    affine = info.get("affine") if header is not None else np.diag([*scale[::-1], 1.0])
    other = affine_from_metadata(layer.metadata) if not info and layer.ndim == 3 else None
    if other is not None:  # a layer of another NIfTI / ITK reader: its geometry, so masks overlay the source
        affine, header = other, header_for(other, arr.shape)
        scale = spacing_from_header(header)
    return Volume(arr[None], np.asarray(affine), header, scale, [layer.name], list(info.get("sources", [])))


def volume_from_layers(image_layers, labels_layer=None, resample: str | None = None) -> tuple[Volume, np.ndarray | None]:
    """Stack image layers of one grid as channels; take a labels layer as the initial mask.

    Returns ``(volume, mask)``: volume data (C, Z, Y, X) float32; mask (Z, Y, X) or None.
    2D layers become a volume of one slice. Layers on different grids (shape or affine) raise
    :class:`GridMismatch`, unless ``resample`` ("linear", "nearest") puts them on the first one's grid.
    """
    from ..io.resample import resample_onto

    if not image_layers:
        raise InputError("select one or more image layers (several = channels of one case)")
    vols = []
    for layer in image_layers:
        if getattr(layer, "rgb", False):
            raise InputError(f"{layer.name}: RGB images are not supported; convert to greyscale first")
        arr = np.asarray(layer.data, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3:
            raise InputError(f"{layer.name}: expected a 2D or 3D image; got {arr.ndim}D {arr.shape}")
        if not np.isfinite(arr).all():
            n_bad = int((~np.isfinite(arr)).sum())
            raise InputError(f"{layer.name}: {n_bad} NaN/Inf voxel(s); reopen the file with this plugin's reader, which replaces them")
        vols.append(layer_volume(layer, arr))
    first = vols[0]
    for n, (layer, v) in enumerate(zip(image_layers[1:], vols[1:], strict=True), start=1):
        oriented = v.header is not None and first.header is not None
        if v.shape == first.shape and (not oriented or np.allclose(v.affine, first.affine, atol=1e-3)):
            continue
        if resample is not None and oriented:
            vols[n] = resample_onto(v, first, resample)
            continue
        what = f"shape {v.shape} differs from {image_layers[0].name} {first.shape}" if v.shape != first.shape else "its affine differs"
        raise GridMismatch(f"{layer.name}: {what}; channels must share one grid", oriented)
    names = [layer.name for layer in image_layers]
    volume = Volume(np.concatenate([v.data for v in vols]), first.affine, first.header, first.spacing, names, first.sources)
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
    meta = nifti_metadata(v.affine, v.header, v.sources, study=True)
    image_layers = []
    for c, name in enumerate(v.channel_names):
        layer = viewer.add_image(
            v.data[c],
            name=f"{im.name} {name}" if name != im.name else name,
            scale=v.spacing,
            translate=layer_translate(v),
            colormap="gray",
            metadata=meta,
            visible=c == 0,
        )
        image_layers.append(layer)
    grid = {"scale": v.spacing, "translate": layer_translate(v)}
    mask_layer = viewer.add_labels(im.mask, name=f"{im.name} mask", **grid, metadata=meta, opacity=0.6)
    return image_layers, mask_layer
