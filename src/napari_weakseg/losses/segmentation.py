"""Soft Dice for probabilities (B, K, H, W) against targets of the same shape."""

from __future__ import annotations

import torch


def soft_dice(prob: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None, eps: float = 1e-6) -> torch.Tensor:
    """Soft Dice over the whole batch (pooled over B, H, W), averaged over classes K.

    prob, target, weight: (B, K, H, W). ``weight`` scales each pixel's
    contribution (the noise-weighted Dice of Wang et al.). Returns a scalar in [0, 1].
    """
    if weight is None:
        weight = torch.ones_like(prob)
    dims = (0, 2, 3)
    inter = (weight * prob * target).sum(dims)
    total = (weight * (prob + target)).sum(dims)
    return ((2 * inter + eps) / (total + eps)).mean()


def dice_loss(prob: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """1 - :func:`soft_dice`."""
    return 1 - soft_dice(prob, target, weight)
