"""A case: one image (possibly several modalities as channels) with its geometry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..errors import InputError
from .image_folder import is_image_folder, read_image_folder
from .nifti import is_nifti_path, nifti_stem, read_nifti, spacing_from_header
from .volume import Volume


def read_volume(path: str | os.PathLike) -> Volume:
    """Read one NIfTI file, one DICOM series (a folder, or ``FOLDER#N`` for one of several) or one folder of
    2D images as a :class:`Volume`."""
    from .dicom import is_dicom_folder, read_dicom_series

    if is_dicom_folder(path):
        return read_dicom_series(path)
    path = Path(path)
    if is_nifti_path(path):
        data, affine, header = read_nifti(path)
        if data.ndim == 3:
            data = data[None]
        names = [nifti_stem(path)] if data.shape[0] == 1 else [f"{nifti_stem(path)}[{c}]" for c in range(data.shape[0])]
        return Volume(data, affine, header, spacing_from_header(header), names, [str(path.resolve())])
    if path.is_dir() or is_image_folder(path):
        stack, _ = read_image_folder(path)
        return Volume(stack[None], sources=[str(path.resolve())], channel_names=[path.name])
    if not path.exists():
        raise InputError(f"{path}: no such file or folder")
    raise InputError(f"{path.name}: not a NIfTI file (.nii, .nii.gz) or a folder of PNG/TIFF images")


def load_case(paths: list[str | os.PathLike] | str, resample: str | None = None) -> Volume:
    """Read one or more files of the same case and stack them as channels.

    All files must share the spatial shape; NIfTI and DICOM files must also share the affine (to 1e-3 mm),
    otherwise the modalities are not registered and stacking them would be wrong. ``resample`` ("linear" or
    "nearest"), when the user asks for it: the others are resampled onto the first one's grid instead
    (``io.resample``: the same world position, voxel by voxel).
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    if not paths:
        raise InputError("no image given")
    vols = [read_volume(p) for p in paths]
    first = vols[0]
    for n, (p, v) in enumerate(zip(paths[1:], vols[1:], strict=True), start=1):
        same_shape = v.shape == first.shape
        same_affine = (v.header is None) == (first.header is None) and np.allclose(v.affine, first.affine, atol=1e-3)
        if same_shape and same_affine:
            continue
        if resample is not None:
            from .resample import resample_onto

            vols[n] = resample_onto(v, first, resample)
            continue
        oriented = v.header is not None and first.header is not None
        hint = "; pass --resample linear to resample it onto the first one's grid" if oriented else ""
        if not same_shape:
            raise InputError(
                f"{Path(p).name}: shape {v.shape} differs from {Path(paths[0]).name} {first.shape}; channels must share one grid{hint}"
            )
        raise InputError(f"{Path(p).name}: its affine differs from {Path(paths[0]).name}; channels must be registered{hint}")
    if len(vols) == 1:
        return first
    return Volume(
        np.concatenate([v.data for v in vols], axis=0),
        first.affine,
        first.header,
        first.spacing,
        [n for v in vols for n in v.channel_names],
        [s for v in vols for s in v.sources],
    )


def load_mask(path: str | os.PathLike, like: Volume) -> np.ndarray:
    """Read a labels volume (Z, Y, X) that must lie on ``like``'s grid.

    Returns a uint8 array (uint16 if labels exceed 255).
    """
    path = Path(path)
    if is_nifti_path(path):
        mask, affine, _ = read_nifti(path, labels=True)
        if mask.ndim == 4:
            raise InputError(f"{path.name}: a mask must be 3D; got 4D shape {mask.shape}")
        if like.header is not None and not np.allclose(affine, like.affine, atol=1e-3):
            raise InputError(f"{path.name}: its affine differs from the image's; the mask is not on the image grid")
    elif path.is_dir():
        stack, _ = read_image_folder(path, as_labels=True)
        mask = stack
    else:
        raise InputError(f"{path.name}: a mask must be a NIfTI file or a folder of PNG/TIFF images")
    if tuple(mask.shape) != tuple(like.shape):
        raise InputError(f"{path.name}: mask shape {tuple(mask.shape)} does not match the image shape {tuple(like.shape)}")
    return as_label_dtype(mask)


MAX_LABEL = 65535


def as_label_dtype(mask: np.ndarray) -> np.ndarray:
    """Smallest unsigned integer type that holds the labels (0 .. 65535); a label outside that range is an
    InputError, never a silent wrap-around (65 536 would become 0: an annotation lost)."""
    if mask.size and (np.issubdtype(mask.dtype, np.floating) and not np.isfinite(mask).all()):
        raise InputError("the mask holds non-finite values (NaN or inf); masks hold integer labels")
    top, low = (int(mask.max()), int(mask.min())) if mask.size else (0, 0)
    if low < 0 or top > MAX_LABEL:
        raise InputError(f"the mask holds label {low if low < 0 else top}; masks hold labels 0 .. {MAX_LABEL}")
    return mask.astype(np.uint8 if top <= 255 else np.uint16, copy=False)
