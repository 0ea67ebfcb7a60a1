"""Building studies without the GUI: tags from masks, simulated scarce annotation."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .model import Study, StudyImage, Tag


def tags_from_masks(im: StudyImage, roi: np.ndarray | None = None) -> None:
    """Tag every slice presence (mask has lesion pixels) or absence (it has none).

    With ``roi`` (Z, Y, X bool, e.g. a brain mask) slices without any ROI voxel
    stay unknown. Not recorded for undo: this is a build step.
    """
    content = im.has_content()
    tags = np.where(content, Tag.PRESENCE, Tag.ABSENCE).astype(np.uint8)
    if roi is not None:
        if tuple(roi.shape) != im.volume.shape:
            raise InputError(f"{im.name}: ROI shape {tuple(roi.shape)} does not match the image shape {im.volume.shape}")
        other = tuple(a for a in range(3) if a != im.axis)
        in_roi = (roi > 0).any(axis=other)
        tags[~in_roi & ~content] = Tag.UNKNOWN
    im.tags[:] = tags
    im.confirmed_empty[:] = False


def parse_amount(text: str) -> float | int:
    """``"0.1"`` or ``"10%"`` -> a fraction; ``"3"`` -> a count."""
    text = str(text).strip()
    try:
        if text.endswith("%"):
            value = float(text[:-1]) / 100
        elif any(c in text for c in ".eE"):
            value = float(text)
        else:
            n = int(text)
            if n < 0:
                raise ValueError
            return n
    except ValueError:
        raise InputError(f"--keep-masks {text!r}: give a fraction (0.1, 10%) or a count (3)") from None
    if not 0 <= value <= 1:
        raise InputError(f"--keep-masks {text!r}: a fraction must lie between 0 and 1")
    return value


def keep_masks(study: Study, amount: float | int, per: str = "slice", seed: int = 0) -> int:
    """Keep masks on a random subset only, to simulate scarce annotation.

    ``per="slice"``: keep ``amount`` (a count, or a fraction) of all annotated
    presence slices of the study; ``per="volume"``: keep whole images' masks. The
    masks of the others are erased (their tags stay). Returns how many slices
    stay annotated.
    """
    if per not in ("slice", "volume"):
        raise InputError(f"--per must be 'slice' or 'volume', not {per!r}")
    rng = np.random.default_rng(seed)
    if per == "slice":
        units = [(i, int(s)) for i, im in enumerate(study.images) for s in np.flatnonzero(im.annotated())]
    else:
        units = [(i, None) for i, im in enumerate(study.images) if im.annotated().any()]
    k = amount if isinstance(amount, int) else int(round(amount * len(units)))
    if isinstance(amount, float) and amount > 0:
        k = max(k, 1)
    k = min(k, len(units))
    chosen = {units[j] for j in rng.choice(len(units), size=k, replace=False)} if units else set()
    for i, im in enumerate(study.images):
        keep = np.zeros(im.n_slices, bool)
        for ci, cs in chosen:
            if ci == i:
                keep[slice(None) if cs is None else cs] = True
        erase = np.flatnonzero(~keep & im.has_content())
        moved = np.moveaxis(im.mask, im.axis, 0)
        moved[erase] = 0
        im.confirmed_empty[~keep] = False
        im.mask_changed()
    return sum(int(im.annotated().sum()) for im in study.images)
