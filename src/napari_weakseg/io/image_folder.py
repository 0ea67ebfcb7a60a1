"""A folder of 2D images (PNG/TIFF/JPEG) read as a stack of slices.

Images of different sizes are zero-padded at the bottom and right to the largest
height and width, so every pixel keeps its coordinates (no resampling). Files
whose names end in ``_mask``, ``_label(s)``, ``_seg`` or ``_annotation`` are
masks, not images, and are skipped when reading images.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import InputError

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg")
MASK_NAME = re.compile(r"[_-](mask|masks|label|labels|seg|annotation)$", re.IGNORECASE)


def is_image_file(path: str | os.PathLike) -> bool:
    return str(path).lower().endswith(IMAGE_SUFFIXES)


def is_image_folder(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_dir() and not path.name.endswith(".zarr")


def natural_key(path: Path):
    """Sort ``img2`` before ``img10``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path, masks: bool = False) -> list[Path]:
    files = sorted((p for p in folder.iterdir() if p.is_file() and is_image_file(p)), key=natural_key)
    return [p for p in files if bool(MASK_NAME.search(p.stem)) == masks]


def read_image_folder(folder: str | os.PathLike, *, as_labels: bool = False):
    """Read the images of ``folder`` (sorted naturally) as one stack.

    Returns ``(stack, info)``: ``stack`` is (N, H, W) float32 (grey; colour is
    converted to luminance) or, with ``as_labels``, an integer stack read from the
    mask files (any non-zero pixel of a colour mask counts as label 1).
    ``info`` has ``files`` and ``shapes`` (each image's original (h, w)), so that
    results can be cropped back.
    """
    from skimage import io as skio

    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder")
    files = list_images(folder, masks=as_labels)
    if as_labels and not files:  # a folder holding only masks, named like images
        files = list_images(folder, masks=False)
    if not files:
        what = "mask" if as_labels else "PNG/TIFF/JPEG image"
        raise InputError(f"{folder}: the folder holds no {what} files")
    n_skipped = 0 if as_labels else len(list_images(folder, masks=True))
    if n_skipped:
        warnings.warn(
            f"{folder.name}: skipped {n_skipped} file(s) named like masks (_mask, _label, _seg, _annotation)", UserWarning, stacklevel=2
        )
    slices = []
    for f in files:
        try:
            im = np.asarray(skio.imread(str(f)))
        except Exception as exc:
            raise InputError(
                f"{f.name}: not a readable image ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
            ) from None
        slices.append(_to_plane(im, f, as_labels))
    shapes = [s.shape for s in slices]
    h = max(s[0] for s in shapes)
    w = max(s[1] for s in shapes)
    dtype = np.uint16 if as_labels else np.float32
    stack = np.zeros((len(slices), h, w), dtype=dtype)
    for i, s in enumerate(slices):
        stack[i, : s.shape[0], : s.shape[1]] = s
    if len(set(shapes)) > 1:
        warnings.warn(
            f"{folder.name}: images of {len(set(shapes))} different sizes zero-padded to {h}x{w} (bottom/right)", UserWarning, stacklevel=2
        )
    if as_labels and stack.max(initial=0) <= 255:
        stack = stack.astype(np.uint8)
    return stack, {"files": [str(f) for f in files], "shapes": shapes}


def _to_plane(im: np.ndarray, f: Path, as_labels: bool) -> np.ndarray:
    if im.ndim == 3 and im.shape[-1] in (3, 4):
        rgb = im[..., :3]
        if as_labels:
            return (rgb.max(axis=-1) > 0).astype(np.uint16)
        from skimage.color import rgb2gray

        top = float(np.iinfo(rgb.dtype).max) if rgb.dtype.kind in "iu" else 1.0  # keep the stored range
        return rgb2gray(rgb).astype(np.float32) * top
    if im.ndim != 2:
        raise InputError(f"{f.name}: expected a 2D grey or colour image; got shape {im.shape}")
    if as_labels:
        if im.dtype.kind == "f":
            im = np.round(im)
        return im.astype(np.uint16)
    return im.astype(np.float32)
