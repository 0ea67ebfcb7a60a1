"""Which slices to annotate next: where the model is least sure."""

from __future__ import annotations

import numpy as np

from .study.model import StudyImage, Tag


def slice_uncertainty(prob: np.ndarray, axis: int = 0) -> np.ndarray:
    """Mean binary entropy (bits) of the lesion probability per slice. prob (Z, Y, X) -> (n_slices,)."""
    p = np.clip(prob.astype(np.float64), 1e-6, 1 - 1e-6)
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    other = tuple(a for a in range(3) if a != axis)
    return entropy.mean(axis=other)


def suggest_slices(im: StudyImage, prob: np.ndarray, limit: int = 10) -> list[tuple[int, float]]:
    """Unannotated presence slices of ``im``, most uncertain first: [(slice, mean entropy), ...]."""
    scores = slice_uncertainty(prob, im.axis)
    candidates = np.flatnonzero((im.tags == Tag.PRESENCE) & ~im.annotated())
    ranked = candidates[np.argsort(-scores[candidates], kind="stable")][:limit]
    return [(int(s), float(scores[s])) for s in ranked]
