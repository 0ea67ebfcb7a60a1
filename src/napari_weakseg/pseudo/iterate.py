"""Noise-robust iterative training on pseudo labels (Wang et al.), on tensors, without the Trainer.

Round k = 1..K: a fresh segmentation network is trained on the kept slices' pseudo labels with the
noise-weighted Dice; it then predicts new pseudo labels for every slice, from which the next round
keeps (re-scored and re-selected when a scorer is given, else all). With validation slices (images
and true masks) it stops at the first round whose validation Dice does not improve and returns the
best round; without, it runs K rounds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..data.augment import augment as augment_batch
from ..errors import InputError
from ..losses.segmentation import dice_loss, noise_weighted_dice_loss


@dataclass
class RoundResult:
    round: int
    trained_on: int  # number of slices whose pseudo labels the round trained on
    val_dice: float | None


@dataclass
class IterationResult:
    """network: the best round's network (None when no round ran); labels: (N, 1, H, W) its pseudo labels;
    history: one entry per round; best_round: 0 = the initial labels."""

    network: nn.Module | None
    labels: torch.Tensor
    history: list[RoundResult] = field(default_factory=list)
    best_round: int = 0


def train_segmenter(
    net: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 8,
    lr: float = 1e-3,
    weighted: bool = True,
    augment: bool = True,
    seed: int = 0,
) -> list[float]:
    """``steps`` Adam steps on random batches of images (N, C, H, W) and 0/1 labels (N, 1, H, W) with the
    noise-weighted Dice (``weighted``) or the plain soft Dice. Returns the losses."""
    gen = torch.Generator().manual_seed(seed)
    device = next(net.parameters()).device
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    loss_fn = noise_weighted_dice_loss if weighted else dice_loss
    net.train()
    losses = []
    for _ in range(steps):
        rows = torch.randint(len(images), (min(batch_size, len(images)),), generator=gen)
        x, g = images[rows], labels[rows]
        if augment:
            x, g = augment_batch(x, g, gen)
        loss = loss_fn(torch.sigmoid(net(x.to(device))), g.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


@torch.no_grad()
def predict_labels(net: nn.Module, images: torch.Tensor, threshold: float = 0.5, batch: int = 16) -> torch.Tensor:
    """images (N, C, H, W) -> 0/1 labels (N, 1, H, W) on the CPU."""
    net.eval()
    device = next(net.parameters()).device
    return torch.cat(
        [(torch.sigmoid(net(images[i : i + batch].to(device))) >= threshold).float().cpu() for i in range(0, len(images), batch)]
    )


def pooled_dice(pred: torch.Tensor, truth: torch.Tensor) -> float:
    """Dice of 0/1 tensors pooled over all pixels (1 when both are empty)."""
    total = float(pred.sum() + truth.sum())
    return 1.0 if total == 0 else 2 * float((pred * truth).sum()) / total


def constrain_kept(kept: torch.Tensor, fixed: torch.Tensor | None = None, excluded: torch.Tensor | None = None) -> torch.Tensor:
    """The rows a round trains on (ascending): ``kept`` plus the ``fixed`` rows (real annotations), minus
    the ``excluded`` ones (rejected by the user). Refuses to leave none."""
    rows = set(kept.tolist()) | (set(fixed.tolist()) if fixed is not None else set())
    rows -= set(excluded.tolist()) if excluded is not None else set()
    if not rows:
        raise InputError("no pseudo label left to train on: every kept one was rejected")
    return torch.tensor(sorted(rows), dtype=torch.long)


def _with_fixed(labels: torch.Tensor, fixed: tuple[torch.Tensor, torch.Tensor] | None) -> torch.Tensor:
    if fixed is None or not len(fixed[0]):
        return labels
    labels = labels.clone()
    labels[fixed[0]] = fixed[1].to(labels)
    return labels


def iterate_pseudo_labels(
    make_net: Callable[[], nn.Module],
    images: torch.Tensor,
    labels: torch.Tensor,
    rounds: int,
    steps: int,
    kept: torch.Tensor | None = None,
    reselect: Callable[[torch.Tensor], torch.Tensor] | None = None,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    weighted: bool = True,
    batch_size: int = 8,
    lr: float = 1e-3,
    augment: bool = True,
    threshold: float = 0.5,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    fixed: tuple[torch.Tensor, torch.Tensor] | None = None,
    excluded: torch.Tensor | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> IterationResult:
    """images (N, C, H, W), pseudo labels (N, 1, H, W) 0/1; ``kept``: rows to train on first (default all);
    ``reselect(labels) -> kept rows`` picks the rows of each round's new labels; ``val``: (images, masks).
    ``fixed``: (rows (F,), masks (F, 1, H, W)) real annotations, trained on in every round with these masks;
    ``excluded``: rows never trained on (the user's review decisions, ``pseudo/review.py``); ``on_round(k, rounds)``
    after round k (a progress bar)."""
    fixed_rows = fixed[0] if fixed is not None else None
    labels = _with_fixed(labels, fixed)
    kept = constrain_kept(torch.arange(len(images)) if kept is None else kept, fixed_rows, excluded)
    result = IterationResult(None, labels)
    best = None
    for k in range(1, rounds + 1):
        net = make_net()
        train_segmenter(net, images[kept], labels[kept], steps, batch_size, lr, weighted, augment, seed + k)
        new = predict_labels(net, images, threshold)
        dice = None if val is None else pooled_dice(predict_labels(net, val[0], threshold), val[1])
        result.history.append(RoundResult(k, len(kept), dice))
        if log:
            log(f"round {k}: trained on {len(kept)} slice(s)" + ("" if dice is None else f", validation Dice {dice:.3f}"))
        if on_round:
            on_round(k, rounds)
        if val is not None and best is not None and dice <= best:
            break
        best = dice
        new = _with_fixed(new, fixed)
        result.network, result.labels, result.best_round = net, new, k
        labels = new
        kept = constrain_kept(reselect(new) if reselect is not None else torch.arange(len(images)), fixed_rows, excluded)
    return result
