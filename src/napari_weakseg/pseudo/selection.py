"""Quality scores of pseudo labels and the selection of the best ones (Wang et al.).

Both scores are per slice and higher means "more like a real auxiliary mask" (the discriminators are
trained with least squares towards 1 for real masks, 0 for G_A's outputs):
    score_disc: the mean of D_B's patch map on the pseudo label (the paper's selection score)
    score_vae:  D_VAE on the pseudo label's VAE latent mean
Selection keeps the slices whose score is at or above the p-th percentile of the scores (p = 75 by
default): the best-scoring (100 - p) %, i.e. the quarter judged most realistic.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError


@dataclass
class Selection:
    """kept: (K,) ascending indices of the kept slices; threshold: the score at the percentile (kept:
    score >= threshold); score: the (N,) score used; score_disc, score_vae: (N,) both scores."""

    kept: torch.Tensor
    threshold: float
    score: torch.Tensor
    score_disc: torch.Tensor
    score_vae: torch.Tensor


def keep_top(scores: torch.Tensor, percentile: float) -> tuple[torch.Tensor, float]:
    """Indices (ascending) of ``scores`` (N,) at or above their ``percentile``-th percentile (linear
    interpolation): about the top (100 - percentile) %, never none. Returns (indices, threshold)."""
    if not len(scores):
        raise InputError("no pseudo labels to select from")
    threshold = float(np.percentile(scores.double().cpu().numpy(), percentile))
    return torch.nonzero(scores.double().cpu() >= threshold).flatten(), threshold


def combined_score(scores: dict[str, torch.Tensor], which: str) -> torch.Tensor:
    """The selection score (N,): "disc", "vae" or "mean" (of the two)."""
    if which == "disc":
        return scores["score_disc"]
    if which == "vae":
        return scores["score_vae"]
    if which == "mean":
        return (scores["score_disc"] + scores["score_vae"]) / 2
    raise InputError(f"unknown selection score {which!r}; use disc, vae or mean")


@torch.no_grad()
def score_pseudo_labels(method, images: torch.Tensor, batch: int = 16) -> dict[str, torch.Tensor]:
    """A trained pseudo-label method on images (N, C, H, W) -> prob (N, 1, H, W), score_disc, score_vae (N,),
    all on the CPU."""
    was_training = method.training
    method.eval()
    device = next(method.parameters()).device
    parts = [method.predict(images[i : i + batch].to(device)) for i in range(0, len(images), batch)]
    method.train(was_training)
    return {k: torch.cat([p[k] for p in parts]).cpu() for k in ("prob", "score_disc", "score_vae")}


def select(scores: dict[str, torch.Tensor], which: str = "disc", percentile: float = 75.0) -> Selection:
    """Keep the slices whose ``which`` score is at or above its ``percentile``-th percentile."""
    score = combined_score(scores, which)
    if bool(torch.isnan(score).any()):
        raise InputError(f"selection score {which} is not available (the method was trained without D_VAE)")
    kept, threshold = keep_top(score, percentile)
    return Selection(kept, threshold, score, scores["score_disc"], scores["score_vae"])
