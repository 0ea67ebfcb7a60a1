"""Quality scores of pseudo labels and the selection of the best ones (Wang et al.).

Both scores are per slice and higher means "more like a real auxiliary mask" (the discriminators are
trained with least squares towards 1 for real masks, 0 for G_A's outputs):
    score_disc: the mean of D_B's patch map on the pseudo label (the paper's selection score)
    score_vae:  D_VAE on the pseudo label's VAE latent mean
Selection keeps the best-scoring ``keep`` % of the slices (75 by default) and rejects the rest, the quarter
judged least realistic. Wang et al., Eq. (9): alpha is the 75th percentile of the scores and the labels on
the good side of it are kept; their score ranks the other way (kept: R_i < alpha), ours has higher = more
real, so we keep the scores at or above the (100 - keep)-th percentile.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError


@dataclass
class Selection:
    """kept: (K,) ascending indices of the kept slices; threshold: the lowest score kept (kept:
    score >= threshold); score: the (N,) score used; score_disc, score_vae: (N,) both scores."""

    kept: torch.Tensor
    threshold: float
    score: torch.Tensor
    score_disc: torch.Tensor
    score_vae: torch.Tensor


def keep_top(scores: torch.Tensor, keep: float) -> tuple[torch.Tensor, float]:
    """Indices (ascending) of the best ``keep`` % of ``scores`` (N,): those at or above their
    (100 - keep)-th percentile (linear interpolation), never none. Returns (indices, threshold)."""
    if not len(scores):
        raise InputError("no pseudo labels to select from")
    threshold = float(np.percentile(scores.double().cpu().numpy(), 100.0 - keep))
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


def select(scores: dict[str, torch.Tensor], which: str = "disc", keep: float = 75.0) -> Selection:
    """Keep the best ``keep`` % of the slices by their ``which`` score."""
    score = combined_score(scores, which)
    if bool(torch.isnan(score).any()):
        raise InputError(f"selection score {which} is not available (the method was trained without D_VAE)")
    kept, threshold = keep_top(score, keep)
    return Selection(kept, threshold, score, scores["score_disc"], scores["score_vae"])
