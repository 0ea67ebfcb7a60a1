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


def noise_weighted_dice_loss(prob: torch.Tensor, pseudo: torch.Tensor) -> torch.Tensor:
    """Noise-weighted Dice (Wang et al.): 1 - soft Dice with pixel weights w = 1 - |prob - pseudo|.

    prob, pseudo: (B, K, H, W). Pixels where the network disagrees with the (noisy) pseudo label
    count less. w is detached: it scales each pixel's contribution but is not itself optimised
    (otherwise the loss could be lowered by moving p to shrink the weights of disagreeing pixels).
    With prob == pseudo every weight is 1 and this is the plain :func:`dice_loss`.
    """
    weight = (1 - (prob - pseudo).abs()).detach()
    return dice_loss(prob, pseudo, weight)
