"""Auxiliary masks for the pseudo-label method: shapes unpaired with the training images.

Two sources, both returning (N, 1, H, W) float32 tensors of 0/1:

- a shape model, :func:`sample_ellipses`: filled random ellipses whose size (in mm,
  converted to pixels with the slices' pixel size), aspect ratio, orientation and
  centre are drawn uniformly from configurable ranges, seeded;
- masks of another data set, :func:`load_masks`: a folder of 2D mask images
  (outlines are filled) or a NIfTI label volume (its non-empty slices).
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from scipy import ndimage as ndi
from torch.nn import functional as F

from ..errors import InputError
from ..pseudo.config import EllipsePrior  # the prior's ranges are configuration; drawn here


def sample_ellipses(n: int, size: tuple[int, int], pixel_mm: float, prior: EllipsePrior | None = None, seed: int = 0) -> torch.Tensor:
    """``n`` masks (n, 1, H, W) of filled ellipses drawn from ``prior``; ``pixel_mm``: pixel size in mm."""
    prior = prior or EllipsePrior()
    prior.check()
    if pixel_mm <= 0:
        raise InputError(f"pixel size must be > 0 mm; got {pixel_mm}")
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[:h, :w].astype(np.float32) + 0.5  # pixel centres
    out = np.zeros((n, 1, h, w), np.float32)
    for i in range(n):
        for _ in range(int(rng.integers(prior.count[0], prior.count[1] + 1))):
            half = rng.uniform(*prior.size_mm) / pixel_mm / 2  # a semi-axis in pixels
            ratio = rng.uniform(*prior.aspect)
            a, b = (half, half * ratio) if prior.size_axis == "major" else (half / ratio, half)
            theta = math.radians(rng.uniform(*prior.angle_deg))
            cy, cx = rng.uniform(*prior.centre) * h, rng.uniform(*prior.centre) * w
            dx, dy = xx - cx, yy - cy
            u = dx * math.cos(theta) + dy * math.sin(theta)
            v = -dx * math.sin(theta) + dy * math.cos(theta)
            out[i, 0][(u / a) ** 2 + (v / b) ** 2 <= 1] = 1.0
    return torch.from_numpy(out)


def load_masks(path: str | os.PathLike, size: tuple[int, int], fill_holes: bool = True) -> torch.Tensor:
    """Masks of another data set, resized to (N, 1, H, W) = size: every non-empty 2D mask image of a
    folder (each at its own size), or every non-empty slice (along the first napari axis) of a NIfTI
    label file. Pixels > 0 are foreground; ``fill_holes`` fills outlines (e.g. HC18's ellipses)."""
    from ..io.image_folder import read_image_folder
    from ..io.nifti import is_nifti_path, read_nifti

    path = Path(path)
    if is_nifti_path(path):
        data, _, _ = read_nifti(path, labels=True)
        planes = list(data if data.ndim == 3 else data[0])
    elif path.is_dir():
        with warnings.catch_warnings():  # padding to a common size: undone just below
            warnings.simplefilter("ignore", UserWarning)
            stack, info = read_image_folder(path, as_labels=True)
        planes = [stack[i, :h, :w] for i, (h, w) in enumerate(info["shapes"])]
    else:
        raise InputError(f"{path}: auxiliary masks must be a folder of mask images or a NIfTI file")
    masks = []
    for plane in planes:
        m = plane > 0
        if not m.any():
            continue
        if fill_holes:
            m = ndi.binary_fill_holes(m)
        t = torch.from_numpy(m.astype(np.float32))[None, None]
        masks.append((F.interpolate(t, size=tuple(size), mode="bilinear", align_corners=False) > 0.5).float())
    if not masks:
        raise InputError(f"{path}: no non-empty masks")
    return torch.cat(masks)


def mask_grid(masks: torch.Tensor, cols: int = 4, gap: int = 1) -> np.ndarray:
    """Masks (N, 1, H, W) -> one uint8 image (rows * (H + gap) - gap, cols * (W + gap) - gap), 255 inside a
    mask, 0 outside, 64 in the gaps: a contact sheet of samples for previews."""
    n, _, h, w = masks.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), 64, np.uint8)
    for i, m in enumerate(masks[:, 0].numpy()):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = np.where(m > 0, 255, 0)
    return out


def provide_aux(method, size: tuple[int, int], pixel_mm: float | None = None) -> torch.Tensor | None:
    """Make the auxiliary masks ``method`` asks for (``aux_spec``) at ``size`` and hand them to it (``set_aux``);
    None when it needs none. The Trainer does this in ``prepare``; scripts that step a method directly use this."""
    spec = method.aux_spec(pixel_mm)
    if spec is None:
        return None
    aux = prior_masks(spec, size)
    method.set_aux(aux)
    return aux


def prior_masks(spec: dict, size: tuple[int, int]) -> torch.Tensor:
    """The auxiliary masks a method asks for (``Method.aux_spec``), (N, 1, H, W) at ``size``: the files of
    ``spec["files"]`` when given, else ``spec["count"]`` ellipses of ``spec["prior"]`` at ``spec["pixel_mm"]``."""
    if spec.get("files"):
        return load_masks(spec["files"], tuple(size))
    return sample_ellipses(spec["count"], tuple(size), spec["pixel_mm"], spec["prior"], spec["seed"])
