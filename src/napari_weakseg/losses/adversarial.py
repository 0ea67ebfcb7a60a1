"""Adversarial losses. ``scores`` may be one tensor or a list (multi-scale); losses are averaged over scales."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _each(scores):
    return scores if isinstance(scores, (list, tuple)) else [scores]


def hinge_d_loss(real_scores, fake_scores) -> torch.Tensor:
    """Discriminator hinge: E[relu(1 - D(real))] + E[relu(1 + D(fake))]."""
    real, fake = _each(real_scores), _each(fake_scores)
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean() for r, f in zip(real, fake, strict=True)) / len(real)


def hinge_g_loss(fake_scores) -> torch.Tensor:
    """Generator hinge: -E[D(fake)]."""
    fake = _each(fake_scores)
    return sum(-f.mean() for f in fake) / len(fake)


def lsgan_d_loss(real_scores, fake_scores) -> torch.Tensor:
    """Least squares: 0.5 E[(D(real) - 1)^2] + 0.5 E[D(fake)^2]."""
    real, fake = _each(real_scores), _each(fake_scores)
    return sum(0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean() for r, f in zip(real, fake, strict=True)) / len(real)


def lsgan_g_loss(fake_scores) -> torch.Tensor:
    """Least squares generator: E[(D(fake) - 1)^2]."""
    fake = _each(fake_scores)
    return sum(((f - 1) ** 2).mean() for f in fake) / len(fake)
