"""Reviewing pseudo labels (Qt-free): per-slice quality, the selection, the user's decisions and what
the next refine round trains on.

The review covers the study's presence slices (what the pseudo-label method trains on). Per slice: its
pseudo label (the model's probability >= the run's threshold, on the image grid), its quality scores
(``score_*`` outputs, higher = more like a real mask) and whether the selection keeps it (the
percentile over every reviewed slice of the study, as ``refine`` does). The user's decisions, per
(image name, slice), are kept in RUN_DIR/review.json and read by ``refine_run``:

    accepted  the pseudo label was copied into the study's masks: a real annotation
    edited    likewise, then painted on
    rejected  never trained on in the next round

Accepted and edited slices count as annotations only while the study still has them annotated (an undo
takes them back).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..atomic import write_json_atomic
from ..errors import InputError
from ..study.model import Study, Tag
from .selection import combined_score, select

KEPT, DROPPED = 1, 2  # values of the pseudo labels layer: kept / dropped by the selection
ACCEPTED, EDITED, REJECTED = "accepted", "edited", "rejected"
REVIEW_FILE = "review.json"


def score_names(outputs) -> list[str]:
    """The per-slice quality scores among a method's ``outputs``: ("score_disc", "score_vae") -> ["disc", "vae"]."""
    return [o[len("score_") :] for o in outputs if o.startswith("score_")]


@dataclass
class ImageReview:
    """One study image. slices: (K,) its reviewed (presence) slice indices, ascending; labels: (K, H, W)
    uint8 0/1 pseudo labels; scores: {"score_disc": (K,), ...}; kept: (K,) bool, kept by the selection."""

    name: str
    axis: int
    shape: tuple[int, int, int]  # (Z, Y, X) of the image
    slices: np.ndarray
    labels: np.ndarray
    scores: dict[str, np.ndarray]
    kept: np.ndarray

    def rows(self, slices) -> np.ndarray:
        """Rows of ``slices`` (slice indices); refuses slices that were not reviewed."""
        slices = np.atleast_1d(np.asarray(slices, np.int64))
        rows = np.searchsorted(self.slices, slices)
        if (rows >= len(self.slices)).any() or (self.slices[np.minimum(rows, len(self.slices) - 1)] != slices).any():
            raise InputError(f"{self.name}: slice(s) {slices.tolist()} have no pseudo label to review (presence slices only)")
        return rows

    def masks(self, slices) -> np.ndarray:
        """(len(slices), H, W) uint8 pseudo labels of ``slices``."""
        return self.labels[self.rows(slices)]

    def order(self, which: str) -> np.ndarray:
        """Rows sorted by the ``which`` score (disc, vae or mean), worst (lowest) first; missing scores last."""
        score = combined_score({k: torch.from_numpy(v) for k, v in self.scores.items()}, which).numpy()
        return np.argsort(score, kind="stable")  # NaN sorts last

    def layer_data(self) -> np.ndarray:
        """(Z, Y, X) uint8 on the image grid: KEPT where a kept slice's pseudo label is, DROPPED for the others."""
        out = np.zeros(self.shape, np.uint8)
        view = np.moveaxis(out, self.axis, 0)
        view[self.slices] = self.labels * np.where(self.kept, KEPT, DROPPED)[:, None, None].astype(np.uint8)
        return out


def review_outputs(
    study: Study, outputs: dict[str, dict[str, np.ndarray]], which: str = "disc", keep: float = 75.0, threshold: float = 0.5
) -> dict[str, ImageReview]:
    """Per image name: the review of its presence slices from a model's outputs on it
    (``TrainedModel.predict_volume``: prob (Z, Y, X), score_* (n_slices,)). The selection keeps the best
    ``keep`` % of all reviewed slices by their ``which`` score."""
    parts = []
    for im in study.images:
        out = outputs.get(im.name)
        slices = np.flatnonzero(im.tags == Tag.PRESENCE)
        if out is None or not len(slices):
            continue
        if "prob" not in out or not score_names(out):
            raise InputError("the model gives no per-slice quality scores: nothing to review")
        labels = (np.moveaxis(out["prob"], im.axis, 0)[slices] >= threshold).astype(np.uint8)
        scores = {k: np.asarray(v, np.float32)[slices] for k, v in out.items() if k.startswith("score_")}
        parts.append(ImageReview(im.name, im.axis, tuple(im.mask.shape), slices, labels, scores, np.zeros(len(slices), bool)))
    if not parts:
        raise InputError("no presence slices to review: tag the slices that show a lesion first")
    pooled = {k: torch.from_numpy(np.concatenate([p.scores[k] for p in parts])) for k in parts[0].scores}
    kept = np.zeros(sum(len(p.slices) for p in parts), bool)
    kept[select(pooled, which, keep).kept.numpy()] = True
    start = 0
    for p in parts:
        p.kept = kept[start : start + len(p.slices)]
        start += len(p.slices)
    return {p.name: p for p in parts}


@dataclass
class Decisions:
    """The user's review decisions: image name -> {slice: accepted / edited / rejected}."""

    by_image: dict[str, dict[int, str]] = field(default_factory=dict)

    def get(self, image: str, s: int) -> str | None:
        return self.by_image.get(image, {}).get(int(s))

    def set(self, image: str, slices, decision: str | None) -> None:
        """Decide ``slices`` of ``image``; None forgets the decision."""
        if decision not in (ACCEPTED, EDITED, REJECTED, None):
            raise InputError(f"unknown review decision {decision!r}")
        mine = self.by_image.setdefault(image, {})
        for s in np.atleast_1d(slices).tolist():
            if decision is None:
                mine.pop(int(s), None)
            else:
                mine[int(s)] = decision

    def slices(self, image: str, decision: str) -> list[int]:
        return sorted(s for s, d in self.by_image.get(image, {}).items() if d == decision)

    def save(self, run_dir: str | Path) -> Path:
        data = {name: {str(s): d for s, d in sorted(m.items())} for name, m in self.by_image.items() if m}
        return write_json_atomic(Path(run_dir) / REVIEW_FILE, {"decisions": data})

    @classmethod
    def load(cls, run_dir: str | Path) -> Decisions:
        """The decisions saved in ``run_dir`` (none when it has no review file)."""
        path = Path(run_dir) / REVIEW_FILE
        if not path.is_file():
            return cls()
        try:
            data = json.loads(path.read_text())["decisions"]
            out = cls()
            for name, m in data.items():
                for s, d in m.items():
                    out.set(name, int(s), d)
            return out
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(f"{path}: not a review file ({exc})") from None


def round_rows(presence, study: Study, decisions: Decisions) -> tuple[torch.Tensor, torch.Tensor]:
    """What the next round makes of the decisions, as rows of ``presence`` (a SliceSet of presence slices):
    (fixed, excluded). fixed: accepted / edited slices still annotated in the study, trained on with
    their masks; excluded: rejected slices, never trained on."""
    fixed, excluded = [], []
    for row, (i, s) in enumerate(presence.source):
        decision = decisions.get(study.images[i].name, s)
        if decision in (ACCEPTED, EDITED) and bool(presence.annotated[row]):
            fixed.append(row)
        elif decision == REJECTED:
            excluded.append(row)
    return torch.tensor(fixed, dtype=torch.long), torch.tensor(excluded, dtype=torch.long)
