"""Which slices to annotate next: where the model is most likely wrong, and why.

The score of a slice is 1 - its *expected Dice*: the Dice the thresholded prediction would reach if the truth
were drawn pixel by pixel from the model's own probabilities, ``2 sum(p * y) / (sum(p) + sum(y))`` with y the
prediction. A confident slice (p near 0 or 1 everywhere) scores near 0; a small, uncertain lesion (the ends of
a tumour) or a faint one the threshold drops scores near 1. Mean entropy, the earlier score, ranked the centre
of a large tumour first (many boundary pixels) and never the ends where the Dice was 0 (issue #17 item 5).
On top of it, what the user's tags say: a presence slice with nothing predicted is surely wrong (score 1), an
absence slice with lesion predicted too (listed for the user to check; the simulated annotator paints presence
slices only). Ties go to the slice farthest from the annotated ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .study.model import StudyImage, Tag

NOTHING = 0.5  # expected lesion pixels below which a slice counts as "nothing there" (no prediction, no mass)


@dataclass
class Suggestion:
    slice: int
    score: float  # 1 - expected Dice, in [0, 1]: higher = more likely wrong
    reason: str


def slice_uncertainty(prob: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean binary entropy (bits) of the lesion probability per slice. prob (Z, Y, X) -> (n_slices,)."""
    p = np.clip(prob.astype(np.float64), 1e-6, 1 - 1e-6)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    other = tuple(a for a in range(3) if a != axis)
    return entropy.mean(axis=other)


def expected_dice(prob: np.ndarray, axis: int = 0, threshold: float = 0.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per slice along ``axis`` of prob (Z, Y, X): (expected Dice, expected lesion pixels sum(p), predicted
    pixels sum(p >= threshold)), each (n_slices,). A slice with neither prediction nor mass has expected Dice 1."""
    p = prob.astype(np.float64)
    pred = p >= threshold
    other = tuple(a for a in range(3) if a != axis)
    mass, area = p.sum(axis=other), pred.sum(axis=other)
    inter = (p * pred).sum(axis=other)
    total = mass + area
    return np.where(total < NOTHING, 1.0, 2 * inter / np.maximum(total, 1e-9)), mass, area


def suggestions(im: StudyImage, prob: np.ndarray, limit: int = 10, threshold: float = 0.5, presence_only: bool = False) -> list[Suggestion]:
    """Unannotated slices of ``im`` most likely wrong first (presence and untagged; absence ones with lesion
    predicted, unless ``presence_only``). prob (Z, Y, X) on the image's grid."""
    edice, mass, area = expected_dice(prob, im.axis, threshold)
    tags, annotated = im.tags, im.annotated()
    painted = np.flatnonzero(annotated)
    predicted = np.flatnonzero(area > 0)
    ends = {int(predicted[0]), int(predicted[-1])} if len(predicted) else set()
    listed = []
    for s in np.flatnonzero(~annotated):
        s = int(s)
        score = float(1 - edice[s])
        if tags[s] == Tag.PRESENCE and area[s] == 0:
            score, reason = 1.0, "presence tag, nothing predicted"
        elif tags[s] == Tag.ABSENCE:
            if presence_only or area[s] == 0:
                continue
            score, reason = 1.0, f"absence tag, {int(area[s])} px predicted"
        elif tags[s] == Tag.PRESENCE or mass[s] >= NOTHING:
            what = "presence" if tags[s] == Tag.PRESENCE else "untagged"
            reason = f"{what}, expected Dice {edice[s]:.2f}" + (", end of the predicted lesion" if s in ends else "")
            if presence_only and tags[s] != Tag.PRESENCE:
                continue
        else:
            continue  # untagged, nothing predicted, no mass: nothing to say
        gap = int(np.abs(painted - s).min()) if len(painted) else im.n_slices
        listed.append((score, gap, s, reason))
    listed.sort(key=lambda t: (-t[0], -t[1], t[2]))
    return [Suggestion(s, score, reason) for score, _, s, reason in listed[:limit]]


def suggest_slices(im: StudyImage, prob: np.ndarray, limit: int = 10, threshold: float = 0.5) -> list[tuple[int, float]]:
    """Unannotated presence slices of ``im``, most likely wrong first: [(slice, score), ...] (``suggestions``)."""
    return [(x.slice, x.score) for x in suggestions(im, prob, limit, threshold, presence_only=True)]
