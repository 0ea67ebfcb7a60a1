"""On-the-fly augmentation of (B, C, H, W) batches: small rotations, zoom, flips, elastic
warp, intensity shift. Geometry uses reflection padding; masks follow the same warp."""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F


def random_warp_grid(
    batch: int,
    height: int,
    width: int,
    gen: torch.Generator,
    device,
    rotate_deg: float = 10.0,
    zoom: float = 0.1,
    elastic: float = 0.03,
    flip: bool = True,
) -> torch.Tensor:
    """Sampling grid (B, H, W, 2) for :func:`torch.nn.functional.grid_sample`."""

    def uniform(lo, hi, *shape):
        return torch.rand(*shape, generator=gen) * (hi - lo) + lo

    angle = uniform(-rotate_deg, rotate_deg, batch) * math.pi / 180
    scale = uniform(1 - zoom, 1 + zoom, batch)
    sx = scale * torch.where(torch.rand(batch, generator=gen) < 0.5, -1.0, 1.0) if flip else scale
    theta = torch.zeros(batch, 2, 3)
    theta[:, 0, 0] = torch.cos(angle) * sx
    theta[:, 0, 1] = -torch.sin(angle) * scale
    theta[:, 1, 0] = torch.sin(angle) * sx
    theta[:, 1, 1] = torch.cos(angle) * scale
    grid = F.affine_grid(theta, (batch, 1, height, width), align_corners=False)
    if elastic > 0:  # smooth displacement: a coarse random field, upsampled (a spline-like warp)
        coarse = torch.randn(batch, 2, 4, 4, generator=gen) * elastic
        field = F.interpolate(coarse, size=(height, width), mode="bicubic", align_corners=False)
        grid = grid + field.permute(0, 2, 3, 1)
    return grid.to(device)


def augment(images: torch.Tensor, masks: torch.Tensor | None, gen: torch.Generator, intensity: float = 0.1, labels: bool = False):
    """Warp images (B, C, H, W) and masks (B, 1, H, W) alike; shift/scale intensities per sample.
    Masks are 0/1 (warped bilinearly, > 0.5) or with ``labels`` integer labels (warped nearest-neighbour)."""
    b, _, h, w = images.shape
    if b == 0:
        return images, masks
    grid = random_warp_grid(b, h, w, gen, images.device)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    shift = (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1).to(images.device) * intensity
    gain = (1 + (torch.rand(b, 1, 1, 1, generator=gen) * 2 - 1) * intensity).to(images.device)
    out = out * gain + shift
    if masks is None:
        return out, None
    if labels:
        return out, F.grid_sample(masks, grid, mode="nearest", padding_mode="reflection", align_corners=False)
    warped = F.grid_sample(masks, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    return out, (warped > 0.5).float()


def random_crop(images: torch.Tensor, masks: torch.Tensor | None, size: int, gen: torch.Generator):
    """A random ``size`` x ``size`` window of each row: images (B, C, H, W) -> (B, C, size, size), masks
    (B, 1, H, W) cut at the same window (or None). Rows smaller than ``size`` are refused by the trainer."""
    b, _, h, w = images.shape
    windows = list(
        zip(
            torch.randint(h - size + 1, (b,), generator=gen).tolist(),
            torch.randint(w - size + 1, (b,), generator=gen).tolist(),
            strict=True,
        )
    )

    def cut(x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[i, :, y : y + size, c : c + size] for i, (y, c) in enumerate(windows)])

    return cut(images), None if masks is None else cut(masks)
