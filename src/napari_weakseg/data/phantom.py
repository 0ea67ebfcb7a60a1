"""A deterministic synthetic brain-like phantom with lesions, ground-truth masks and tags.

Used by the demo, the napari sample data and the tests (which never need real data).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ..io.case import Volume
from ..study.model import Tag


@dataclass
class PhantomCase:
    """volume: (C, Z, Y, X) float32; mask: (Z, Y, X) uint8 lesion labels (1);
    tags: (Z,) uint8 Tag values (presence / absence inside the head, unknown outside);
    head: (Z, Y, X) bool region of the head (the ROI for tagging)."""

    volume: Volume
    mask: np.ndarray
    tags: np.ndarray
    head: np.ndarray


def make_phantom(
    shape: tuple[int, int, int] = (32, 96, 96),
    spacing: tuple[float, float, float] = (3.0, 1.5, 1.5),
    n_lesions: int = 3,
    channels: int = 1,
    noise: float = 0.04,
    seed: int = 0,
) -> PhantomCase:
    """Make a phantom head of ``shape`` (Z, Y, X) with ``n_lesions`` lesions.

    Tissue: two smoothly varying tissue classes, dark ventricles, a bright skull
    rim, Gaussian noise. Lesions: blobs of random size (in-plane radius 4..14 px),
    elongation, orientation and contrast (+0.35..+0.9, FLAIR-like), deformed by
    smooth noise, each spanning a few slices. With ``channels=2`` the second
    channel is T1c-like: lesions have an enhancing rim around a dark core.
    """
    rng = np.random.default_rng(seed)
    zz, yy, xx = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    # head: an ellipsoid that leaves the first and last slices outside
    head_r = np.sqrt((zz / 0.8) ** 2 + (yy / 0.85) ** 2 + (xx / 0.75) ** 2)
    head = head_r < 1.0
    brain = head_r < 0.9
    tissue = _smooth_noise(rng, shape, 3.0) > 0
    flair = np.where(tissue, 0.55, 0.75).astype(np.float32)
    flair += 0.08 * _smooth_noise(rng, shape, 1.5)
    ventricles = (((np.abs(xx) - 0.15) / 0.1) ** 2 + (yy / 0.3) ** 2 + (zz / 0.35) ** 2) < 1
    flair[ventricles] = 0.2
    flair[head & ~brain] = 1.1  # skull rim
    flair[~head] = 0.0

    mask = np.zeros(shape, np.uint8)
    contrast = np.zeros(shape, np.float32)
    for _ in range(n_lesions):
        blob = _lesion_blob(rng, shape, brain & ~ventricles)
        mask[blob] = 1
        contrast[blob] = np.maximum(contrast[blob], rng.uniform(0.35, 0.9))
    soft = ndi.gaussian_filter(contrast, (0.3, 0.8, 0.8))
    flair = flair + soft * brain

    images = [flair]
    names = ["flair"]
    if channels >= 2:
        t1c = np.where(tissue, 0.6, 0.5).astype(np.float32) + 0.05 * _smooth_noise(rng, shape, 1.5)
        t1c[ventricles] = 0.3
        t1c[head & ~brain] = 0.9
        t1c[~head] = 0.0
        rim = mask.astype(bool) & ~ndi.binary_erosion(mask.astype(bool), iterations=2)
        core = mask.astype(bool) & ~rim
        t1c[rim] += 0.6
        t1c[core] -= 0.2
        images.append(t1c)
        names.append("t1c")
    data = np.stack(images).astype(np.float32)
    data += rng.normal(0, noise, data.shape).astype(np.float32) * head
    sz, sy, sx = spacing
    volume = Volume(data, np.diag([sx, sy, sz, 1.0]), None, tuple(spacing), names, ["synthetic phantom"])
    in_head = head.any(axis=(1, 2))
    has_lesion = mask.any(axis=(1, 2))
    tags = np.where(in_head, np.where(has_lesion, Tag.PRESENCE, Tag.ABSENCE), Tag.UNKNOWN).astype(np.uint8)
    return PhantomCase(volume, mask, tags, head)


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std Gaussian-smoothed noise of ``shape``."""
    field = ndi.gaussian_filter(rng.standard_normal(shape).astype(np.float32), (sigma / 2, sigma, sigma))
    return field / (field.std() + 1e-8)


def _lesion_blob(rng: np.random.Generator, shape, allowed: np.ndarray) -> np.ndarray:
    """One deformed ellipsoid inside ``allowed`` (a boolean volume)."""
    nz, ny, nx = shape
    candidates = np.argwhere(ndi.binary_erosion(allowed, iterations=3))
    if not len(candidates):  # a small phantom: no centre 3 voxels inside the brain
        candidates = np.argwhere(allowed)
    if not len(candidates):
        raise ValueError(f"phantom shape {shape} is too small to hold lesions")
    cz, cy, cx = candidates[rng.integers(len(candidates))]
    r_in = rng.uniform(4, 14) * nx / 96
    ry, rx = r_in * rng.uniform(0.6, 1.0), r_in
    rz = rng.uniform(1.5, 4.0) * nz / 32
    theta = rng.uniform(0, np.pi)
    z, y, x = np.ogrid[:nz, :ny, :nx]
    dy, dx = y - cy, x - cx
    u = dx * np.cos(theta) + dy * np.sin(theta)
    v = -dx * np.sin(theta) + dy * np.cos(theta)
    r = (u / rx) ** 2 + (v / ry) ** 2 + ((z - cz) / rz) ** 2
    wobble = 0.35 * _smooth_noise(rng, shape, 2.0)
    return (r + wobble < 1.0) & allowed
