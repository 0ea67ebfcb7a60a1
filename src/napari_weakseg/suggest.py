"""Which slices to annotate next: where painting one fixes the most pixels, and why.

The score of a slice is its *expected wrong pixels*, sum(p (1 - y) + (1 - p) y) with y the thresholded
prediction: the errors the model itself expects there, i.e. what painting the slice corrects, and what the
volume's Dice counts. The list alternates them with the presence slices of the lowest expected Dice (those the
model likely fails, often a lesion's tapering ends: few pixels, but the failures a per-slice view sees); the
first place is always the most wrong pixels, what the simulated annotator paints. An absence slice with lesion
predicted scores its predicted pixels (sure errors; listed for the user to check, the simulated annotator paints
presence slices only). Where nothing is predicted on any
presence slice, those come first, the middle of the longest run of them first (lesions taper towards their
ends). Each listed slice says why: its expected Dice (2 sum(p y) / (sum(p) + sum(y))), and whether its
presence tag contradicts an empty prediction.

Measured on BraTS pat0003 (the effort benchmark's first five models of genseg; errors of the top slice against
the truth): the mean entropy, the earlier score, ranked the confident centre first; 1 - expected Dice the
tumour's 7-pixel end (the per-slice failures, which the volume's Dice hardly counts); adding a "lesion likely
missed beyond the predicted lesion" estimate found the slices missed with confidence on the first model (3 738
wrong pixels against 2 593) but then chose the tapering ends (98-527); the expected wrong pixels alone chose
slices with 1 210-2 593 wrong pixels, near the oracle's 1 407-3 895 (docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .study.model import StudyImage, Tag
from .training.dock_defaults import SUGGEST_SPREAD

NOTHING = 0.5  # expected lesion pixels below which a slice counts as "nothing there" (no prediction, no mass)


@dataclass
class Suggestion:
    slice: int
    score: float  # expected wrong pixels (weighed by the distance to painted slices); inf: nothing predicted on any presence slice
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


def _near(weight: float) -> str:
    """The reason's note for a slice ranked lower for lying near a painted one."""
    return f"; near a painted slice (x{weight:.2f})" if weight < 0.95 else ""


def _runs(flags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For boolean flags (n,): (how far each flagged element lies from the nearest unflagged one, the middle of
    a run highest; the length of its run), each (n,), 0 where not flagged."""
    n = len(flags)
    left, right = np.zeros(n, int), np.zeros(n, int)
    for i in range(n):
        left[i] = left[i - 1] + 1 if flags[i] and i > 0 else int(flags[i])
    for i in range(n - 1, -1, -1):
        right[i] = right[i + 1] + 1 if flags[i] and i < n - 1 else int(flags[i])
    return np.minimum(left, right), np.where(flags, left + right - 1, 0)


def suggestions(
    im: StudyImage,
    prob: np.ndarray,
    limit: int = 10,
    threshold: float = 0.5,
    presence_only: bool = False,
    spread: float = SUGGEST_SPREAD,
) -> list[Suggestion]:
    """Unannotated slices of ``im``, the most worth painting first (presence and untagged; absence ones with
    lesion predicted, unless ``presence_only``). prob (Z, Y, X) on the image's grid. ``score``: the pixels the
    slice likely has wrong (``inf`` for presence slices when nothing is predicted on any). ``spread`` > 0 (in
    slices; the dock's ``SUGGEST_SPREAD``; 0 is off): the ranking weighs the expected wrong pixels by
    1 - exp(-d / spread), d the distance to the nearest annotated slice, so that the next slices are not the
    neighbours of one just painted (measured: ``weakseg bench effort --profile cpu-spread``)."""
    p = prob.astype(np.float64)
    edice, mass, area = expected_dice(p, im.axis, threshold)
    other = tuple(a for a in range(3) if a != im.axis)
    pred = p >= threshold
    wrong = (p * ~pred + (1 - p) * pred).sum(axis=other)
    tags, annotated = im.tags, im.annotated()
    weight = np.ones(len(tags))
    if spread > 0 and annotated.any():
        distance = np.abs(np.arange(len(tags))[:, None] - np.flatnonzero(annotated)[None, :]).min(axis=1)
        weight = 1 - np.exp(-distance / spread)
    ranked = wrong * weight  # the reasons give the pixels themselves
    presence = tags == Tag.PRESENCE
    blank = bool(presence.any()) and not area[presence].any()  # nothing predicted on any presence slice
    middle, run = _runs(presence & ~annotated & (area == 0))
    listed = []
    for s in np.flatnonzero(~annotated):
        s = int(s)
        if presence[s] and blank:
            key, score = (float("inf"), middle[s]), float("inf")
            reason = "presence tag, nothing predicted" + (f" (one of {run[s]} in a row)" if run[s] > 1 else "")
        elif presence[s]:
            key, score = (float(ranked[s]), 0), float(ranked[s])
            what = "presence tag, nothing predicted" if area[s] == 0 else "presence"
            reason = f"{what}: about {wrong[s]:.0f} px likely wrong, expected Dice {edice[s]:.2f}{_near(weight[s])}"
        elif tags[s] == Tag.ABSENCE:
            if presence_only or area[s] == 0:
                continue
            key, score, reason = (float(area[s]), 0), float(area[s]), f"absence tag, {int(area[s])} px predicted"
        elif mass[s] >= NOTHING and not presence_only:
            key, score = (float(ranked[s]), 0), float(ranked[s])
            reason = f"untagged: about {wrong[s]:.0f} px likely wrong, expected Dice {edice[s]:.2f}{_near(weight[s])}"
        else:
            continue  # untagged, nothing predicted, no mass: nothing to say
        listed.append((key, s, score, reason))
    listed.sort(key=lambda t: (-t[0][0], -t[0][1], t[1]))
    most = [Suggestion(s, score, reason) for _, s, score, reason in listed]
    if blank:
        return most[:limit]
    # every other place goes to the presence slices the model likely fails (lowest expected Dice): the tapering ends
    # of a lesion, which hold few wrong pixels but are where a per-slice view sees the failures (issue #17 item 5)
    judged = np.flatnonzero(presence & ~annotated & ((mass >= NOTHING) | (area > 0)))  # something there to judge
    failing = [
        Suggestion(int(x), float(wrong[x]), f"presence: expected Dice {edice[x]:.2f}, likely failing (about {wrong[x]:.0f} px wrong)")
        for x in sorted(judged, key=lambda x: (edice[x], -wrong[x], x))
    ]
    return interleave(most, failing)[:limit]


def interleave(first: list[Suggestion], second: list[Suggestion]) -> list[Suggestion]:
    """first[0], second[0], first[1], second[1], ... with each slice listed once (where it first comes)."""
    from itertools import chain, zip_longest

    out, seen = [], set()
    for x in chain.from_iterable(zip_longest(first, second)):  # the longer list's rest follows
        if x is not None and x.slice not in seen:
            seen.add(x.slice)
            out.append(x)
    return out


def suggest_slices(
    im: StudyImage, prob: np.ndarray, limit: int = 10, threshold: float = 0.5, spread: float = SUGGEST_SPREAD
) -> list[tuple[int, float]]:
    """Unannotated presence slices of ``im``, the most worth painting first: [(slice, score), ...] (``suggestions``)."""
    return [(x.slice, x.score) for x in suggestions(im, prob, limit, threshold, presence_only=True, spread=spread)]
