"""After the Trainer's GAN stage: select the best pseudo labels and train the segmenter on them in
noise-robust rounds (the second half of the pseudo-label method). On tensors, or on a run folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ..errors import InputError
from .iterate import IterationResult, iterate_pseudo_labels
from .selection import Selection, score_pseudo_labels, select


def refine(
    method,
    images: torch.Tensor,
    val: tuple[torch.Tensor, torch.Tensor] | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    fixed: tuple[torch.Tensor, torch.Tensor] | None = None,
    excluded: torch.Tensor | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> tuple[Selection | None, IterationResult]:
    """A trained ``pseudo-label`` method and its training images (N, C, H, W) -> (selection, rounds).

    Pseudo labels are G_A's outputs thresholded at ``cfg.threshold``; with ``selection`` on, the rounds
    train on the kept slices and every round re-selects among its new labels with D_B / D_VAE. On success
    the best round's network becomes ``method.segmenter`` and ``predict`` uses it. The user's review:
    ``fixed`` (rows, masks (F, 1, H, W)) are real annotations, always trained on; ``excluded`` rows never.
    """
    pl, cfg = method.pl, method.cfg
    was_ready = bool(method.segmenter_ready)
    method.segmenter_ready.fill_(False)  # score G_A's pseudo labels, not an earlier segmenter's
    scores = score_pseudo_labels(method, images)
    method.segmenter_ready.fill_(was_ready)
    labels = (scores["prob"] >= cfg.threshold).float()
    selection, reselect = None, None
    if pl.selection:
        selection = select(scores, pl.selection_score, pl.selection_keep)
        if log:
            log(f"kept {len(selection.kept)} of {len(images)} pseudo labels ({pl.selection_score} score >= {selection.threshold:.3f})")

        def _reselect(new_labels: torch.Tensor) -> torch.Tensor:
            return select(_scores_of(method, new_labels), pl.selection_score, pl.selection_keep).kept

        reselect = _reselect

    device = next(method.parameters()).device
    result = iterate_pseudo_labels(
        lambda: method.new_segmenter().to(device),
        images,
        labels,
        pl.rounds,
        pl.round_steps,
        kept=None if selection is None else selection.kept,
        reselect=reselect,
        val=val,
        weighted=pl.weighted_dice,
        batch_size=cfg.batch_size,
        lr=cfg.lr,
        augment=cfg.augment,
        threshold=cfg.threshold,
        seed=seed,
        log=log,
        fixed=fixed,
        excluded=excluded,
        on_round=on_round,
    )
    if result.network is not None:
        method.segmenter.load_state_dict(result.network.state_dict())
        method.segmenter_ready.fill_(True)
    return selection, result


@torch.no_grad()
def _scores_of(method, labels: torch.Tensor, batch: int = 16) -> dict[str, torch.Tensor]:
    device = next(method.parameters()).device
    parts = [method.quality_scores(labels[i : i + batch].to(device)) for i in range(0, len(labels), batch)]
    return {k: torch.cat([p[k] for p in parts]).cpu() for k in ("score_disc", "score_vae")}


def refine_run(
    run_dir: str | Path,
    study,
    which: str = "best",
    device: str = "cpu",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    on_round: Callable[[int, int], None] | None = None,
) -> tuple[Path, IterationResult]:
    """Refine a ``pseudo-label`` run on its study's presence slices; annotated ones (if any) validate the
    rounds, except those the user accepted or edited in the review (RUN_DIR/review.json), which are trained
    on as real annotations; slices rejected there are never trained on. Writes RUN_DIR/refined.pt (all
    weights, the segmenter included): ``predict --which refined``. ``on_round(k, rounds)`` after each round."""
    from ..data.slices import study_slices
    from ..inference import TrainedModel
    from ..training.checkpoint import save_tensors
    from .review import Decisions, round_rows

    model = TrainedModel.load(run_dir, which=which, device=device)
    if model.info.get("method") != "pseudo-label":
        raise InputError(f"{run_dir}: a {model.info.get('method')} run; refining needs a pseudo-label run")
    mc = model.config
    slices = study_slices(study, model.normaliser, mc.input_size, 2**mc.net.depth, flip_halves=mc.flip_halves)
    presence = slices.subset(torch.nonzero(slices.presence).flatten())
    if not len(presence):
        raise InputError("the study has no presence slices")
    fixed, excluded = round_rows(presence, study, Decisions.load(run_dir))
    validate = presence.annotated.clone()
    validate[fixed] = False
    val = (presence.images[validate], presence.masks[validate]) if bool(validate.any()) else None
    if log and (len(fixed) or len(excluded)):
        log(f"review: {len(fixed)} accepted or edited slice(s) as annotations, {len(excluded)} rejected")
    _, result = refine(model.method, presence.images, val, seed, log, (fixed, presence.masks[fixed]), excluded, on_round)
    path = save_tensors(
        Path(run_dir) / "refined.pt",
        {"model": model.method.state_dict(), "best_round": result.best_round, "val_dice": [r.val_dice for r in result.history]},
    )
    return path, result
