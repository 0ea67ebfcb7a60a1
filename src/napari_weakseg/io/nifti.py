"""NIfTI reading and writing with an exact affine/header round trip.

Axis convention: NIfTI stores voxels as (i, j, k[, c]). napari shows the first
axis on the slider and the last two as the displayed plane, so arrays in this
package are in *napari order* (k, j, i) -- i.e. (Z, Y, X) -- with channels first:
(C, Z, Y, X). The conversion is a pure transpose, so writing back is exact.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nibabel as nib
import numpy as np

from ..atomic import maybe_gzip, write_bytes_atomic
from ..errors import InputError

NIFTI_SUFFIXES = (".nii", ".nii.gz")


class InputWarning(UserWarning):
    """Input was usable after a repair the user should know about (e.g. NaN voxels)."""


def is_nifti_path(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def nifti_stem(path: str | os.PathLike) -> str:
    """File name without ``.nii``/``.nii.gz``."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return Path(name).stem


def to_napari_order(arr: np.ndarray) -> np.ndarray:
    """(i, j, k) -> (k, j, i); (i, j, k, c) -> (c, k, j, i)."""
    return np.transpose(arr, (2, 1, 0)) if arr.ndim == 3 else np.transpose(arr, (3, 2, 1, 0))


def to_nifti_order(arr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_napari_order`."""
    return to_napari_order(arr)  # the reversal is its own inverse for 3D and 4D


def read_nifti(path: str | os.PathLike, *, labels: bool = False):
    """Read a 3D or 4D NIfTI file.

    Returns ``(data, affine, header)`` where ``data`` is in napari order:
    (Z, Y, X) for 3D, (C, Z, Y, X) for 4D (the 4th NIfTI axis taken as channels).
    Images are float32 with non-finite voxels replaced by 0 (with a warning);
    ``labels=True`` keeps the stored integer type. ``affine`` and ``header`` are
    those of the file, in NIfTI (i, j, k) order, for writing results back.
    Raises :class:`InputError` with a one-line reason for anything unusable.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        img = nib.load(str(path))
    except Exception as exc:  # nibabel raises many types for foreign/corrupt files
        if _gzip_truncated(path):
            raise InputError(f"{path.name}: the file is truncated (its compressed data ends early); copy it again") from None
        raise InputError(f"{path.name}: not a readable NIfTI file ({_reason(exc)})") from None
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image)):
        raise InputError(f"{path.name}: not a NIfTI image (found {type(img).__name__})")
    shape = img.shape
    if len(shape) == 5 and shape[3] == 1:  # (i, j, k, t=1, c): a vector image of one time point
        shape = shape[:3] + shape[4:]
    if len(shape) == 4 and shape[3] == 1:
        shape = shape[:3]
    if len(shape) < 3:
        raise InputError(f"{path.name}: a {len(shape)}D NIfTI {tuple(img.shape)}; expected a 3D volume (or 4D with channels)")
    if len(shape) > 4:
        raise InputError(f"{path.name}: a {len(shape)}D NIfTI {tuple(img.shape)}; expected a 3D volume (or 4D with channels)")
    if 0 in shape:
        raise InputError(f"{path.name}: an empty NIfTI {tuple(img.shape)} (an axis of length 0)")
    check_fits_in_memory(path.name, shape, np.dtype(img.get_data_dtype()).itemsize)
    try:
        arr = np.asanyarray(img.dataobj) if labels else img.get_fdata(dtype=np.float32)
    except Exception as exc:
        if isinstance(exc, MemoryError):
            raise InputError(f"{path.name}: not enough memory to read its {_gib(shape, 4)} of voxels") from None
        raise InputError(f"{path.name}: the voxel data cannot be read ({_reason(exc)}); is the file truncated?") from None
    arr = np.asarray(arr).reshape(shape)
    if labels:
        if arr.dtype.kind == "f":
            if not np.isfinite(arr).all():
                raise InputError(f"{path.name}: a mask with NaN/Inf values")
            rounded = np.round(arr)
            if np.abs(arr - rounded).max(initial=0) > 1e-3:  # tolerate float storage noise (0.99999997)
                raise InputError(f"{path.name}: a mask must hold whole-number labels")
            arr = rounded.astype(np.int32)
        if arr.min(initial=0) < 0:
            raise InputError(f"{path.name}: a mask with negative labels")
    else:
        arr = replace_non_finite(arr, path.name)
    return to_napari_order(arr), img.affine.copy(), img.header.copy()


def replace_non_finite(arr: np.ndarray, what: str) -> np.ndarray:
    """Replace NaN/Inf voxels by 0, warning with their count."""
    bad = ~np.isfinite(arr)
    n_bad = int(bad.sum())
    if n_bad:
        warnings.warn(f"{what}: {n_bad} NaN/Inf voxel(s) replaced by 0", InputWarning, stacklevel=3)
        arr = np.where(bad, np.float32(0), arr)
    return arr


def spacing_from_header(header) -> tuple[float, float, float]:
    """Voxel size in napari order (sz, sy, sx), in the header's spatial units."""
    zooms = header.get_zooms()[:3]
    return tuple(float(z) if z > 0 else 1.0 for z in zooms[::-1])


def write_nifti(path: str | os.PathLike, data: np.ndarray, affine=None, header=None, dtype=None) -> Path:
    """Write ``data`` (napari order, (Z, Y, X) or (C, Z, Y, X)) as NIfTI, atomically.

    With ``header`` the file keeps that header's affines (qform and sform with
    their codes), voxel sizes, units and description; only the shape and data
    type follow ``data``. Without it, ``affine`` (default identity) is used.
    ``.nii.gz`` is gzip-compressed.
    """
    arr = to_nifti_order(np.asarray(data))
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    if arr.dtype == np.int64:  # NIfTI readers widely choke on int64
        arr = arr.astype(np.int32 if arr.max(initial=0) > np.iinfo(np.int16).max else np.int16)
    if header is not None:
        hdr = header.copy()
        hdr.set_data_dtype(arr.dtype)
        hdr.set_slope_inter(np.nan, np.nan)
        img = type_for_header(hdr)(arr, None, hdr)
        # keep the header's own qform/sform, not ones recomputed from a rounded affine
        img.set_qform(header.get_qform(), int(header["qform_code"]))
        img.set_sform(header.get_sform(), int(header["sform_code"]))
        # set_qform recomputes the quaternion from the matrix, which can move the last
        # bit (NIfTI-2 stores it as float64): copy the stored fields verbatim
        for key in ("quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z", "srow_x", "srow_y", "srow_z"):
            img.header[key] = header[key]
        img.header["pixdim"][:4] = header["pixdim"][:4]
    else:
        img = nib.Nifti1Image(arr, np.eye(4) if affine is None else np.asarray(affine, dtype=float))
        img.set_qform(img.affine, 1)
        img.set_sform(img.affine, 1)
    return write_bytes_atomic(path, maybe_gzip(path, img.to_bytes()))


def type_for_header(header):
    return nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image


def _gzip_truncated(path: Path) -> bool:
    """True for a gzip file whose stream ends before its end marker."""
    import gzip
    import zlib

    if not str(path).lower().endswith(".gz"):
        return False
    try:
        with gzip.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except EOFError:
        return True
    except (OSError, zlib.error):
        return False
    return False


def _gib(shape, itemsize: int) -> str:
    return f"{float(np.prod(shape, dtype=np.float64)) * itemsize / 2**30:.2f} GiB"


def check_fits_in_memory(name: str, shape, itemsize: int, share: float = 0.5) -> None:
    """InputError before reading when the header's voxel count would take more than ``share`` of the memory
    available now (a small compressed file can claim gigabytes: a "gzip bomb"), with the sizes named."""
    import psutil

    need = float(np.prod(shape, dtype=np.float64)) * max(itemsize, 4)  # float32 at least, as it is read
    available = psutil.virtual_memory().available
    if need > share * available:
        raise InputError(
            f"{name}: its header declares {tuple(int(s) for s in shape)} voxels ({_gib(shape, max(itemsize, 4))}), "
            f"more than half the memory available now ({available / 2**30:.1f} GiB); refused before decompressing"
        )


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
