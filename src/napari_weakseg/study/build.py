"""Building studies without the GUI: tags from masks, simulated scarce annotation."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .halves import HalfSplit, half_of, left_right_axis, middle_of
from .model import Study, StudyImage, Tag


def half_tags_from_masks(
    mask: np.ndarray, roi: np.ndarray | None, slice_axis: int, split: HalfSplit, roi_min: float = 0.25, lesion_min: float = 0.01
) -> np.ndarray:
    """(n_slices, 2) uint8 Tag per half-slice, from a labels volume ``mask`` (Z, Y, X) and an ROI (e.g. the
    brain mask, or None: every voxel). A half is tagged when the ROI covers at least ``roi_min`` of its area
    (paper: 25 %): presence when its lesion covers at least ``lesion_min`` of its ROI (paper: 1 %), absence when
    it has no lesion voxel, unknown in between (a few lesion voxels: neither a clear presence nor healthy).

    The area is the half's part of the ROI's in-plane bounding box over the whole volume, not of the stored
    field of view: Vorontsov et al. (Sec. IV-D) state 25 % "of the area" for BraTS 2017, whose brains fill more
    of the 240x240 field than those of our BraTS 2015 copies (there at most 22-31 % of a half's field): a share
    of the field would drop whole volumes. Relative to the brain's extent the rule keeps the paper's intent,
    halves from the top and bottom of the head (little brain) are left out, whatever the field of view."""
    roi = np.ones(mask.shape, bool) if roi is None else roi > 0
    lesion = (mask > 0) & roi
    tags = np.zeros((mask.shape[slice_axis], 2), np.uint8)
    if not roi.any():
        return tags
    plane = [a for a in range(3) if a != slice_axis]
    lo = [int(np.flatnonzero(roi.any(axis=tuple(b for b in range(3) if b != a)))[0]) for a in range(3)]
    hi = [int(np.flatnonzero(roi.any(axis=tuple(b for b in range(3) if b != a)))[-1]) + 1 for a in range(3)]
    for h in (0, 1):
        r, les = half_of(roi, h, split.at, split.axis), half_of(lesion, h, split.at, split.axis)
        extent = []
        for a in plane:  # the bounding box's extent on this side of the cut
            a_lo, a_hi = (lo[a], hi[a]) if a != split.axis else ((lo[a], min(hi[a], split.at)) if h == 0 else (max(lo[a], split.at), hi[a]))
            extent.append(max(a_hi - a_lo, 0))
        area = extent[0] * extent[1]
        n_roi = r.sum(axis=tuple(plane))
        n_les = les.sum(axis=tuple(plane))
        kept = (n_roi >= roi_min * area) & (n_roi > 0)
        t = np.where(n_les == 0, Tag.ABSENCE, np.where(n_les >= lesion_min * np.maximum(n_roi, 1), Tag.PRESENCE, Tag.UNKNOWN))
        tags[:, h] = np.where(kept, t, Tag.UNKNOWN)
    return tags


def tags_from_masks(im: StudyImage, roi: np.ndarray | None = None, roi_min: float = 0.25, lesion_min: float = 0.01) -> None:
    """Tag every slice presence (mask has lesion pixels) or absence (it has none).

    With ``roi`` (Z, Y, X bool, e.g. a brain mask) slices without any ROI voxel
    stay unknown. On a split image each half-slice is tagged (``half_tags_from_masks``: a half is
    kept when the ROI covers ``roi_min`` of it, presence from ``lesion_min`` of its ROI).
    Not recorded for undo: this is a build step.
    """
    if roi is not None and tuple(roi.shape) != im.volume.shape:
        raise InputError(f"{im.name}: ROI shape {tuple(roi.shape)} does not match the image shape {im.volume.shape}")
    if im.split is not None:
        im.half_tags[:] = half_tags_from_masks(im.mask, roi, im.axis, im.split, roi_min, lesion_min)
        im.sync_tags()
        im.confirmed_empty[:] = False
        return
    content = im.has_content()
    tags = np.where(content, Tag.PRESENCE, Tag.ABSENCE).astype(np.uint8)
    if roi is not None:
        other = tuple(a for a in range(3) if a != im.axis)
        in_roi = (roi > 0).any(axis=other)
        tags[~in_roi & ~content] = Tag.UNKNOWN
    im.tags[:] = tags
    im.confirmed_empty[:] = False


def split_in_halves(
    study: Study, im: StudyImage, roi: np.ndarray | None = None, at: int | None = None, axis: int | None = None
) -> HalfSplit:
    """Split ``im`` into halves across ``axis`` (default: the patient's left-right, from the affine) at
    ``at`` (default: the middle of the ROI's extent, i.e. the midline of a brain mask). Returns the split."""
    axis = left_right_axis(im.volume.affine, im.axis) if axis is None else axis
    split = HalfSplit(axis, middle_of(roi, axis, im.volume.shape) if at is None else at)
    study.set_split(im, split)
    return split


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

    ``per="slice"``: keep ``amount`` (a count, or a fraction) of all annotated presence slices of the
    study; ``per="half"``: of the annotated presence half-slices (split images; whole slices count as one
    unit on the others); ``per="volume"``: keep whole images' masks. The masks of the others are erased
    (their tags stay). Returns how many units (slices, half-slices or slices of kept volumes) stay annotated.
    """
    if per not in ("slice", "half", "volume"):
        raise InputError(f"--per must be 'slice', 'half' or 'volume', not {per!r}")
    rng = np.random.default_rng(seed)
    units = []  # (image, slice or None, half or None)
    for i, im in enumerate(study.images):
        if per == "volume":
            units += [(i, None, None)] if im.annotated().any() else []
        elif per == "half" and im.split is not None:
            units += [(i, int(s), int(h)) for s, h in zip(*np.nonzero(im.half_annotated()), strict=True)]
        else:
            units += [(i, int(s), None) for s in np.flatnonzero(im.annotated())]
    k = amount if isinstance(amount, int) else int(round(amount * len(units)))
    if isinstance(amount, float) and amount > 0:
        k = max(k, 1)
    k = min(k, len(units))
    chosen = [units[j] for j in rng.choice(len(units), size=k, replace=False)] if units else []
    for i, im in enumerate(study.images):
        keep = np.zeros(im.mask.shape, bool)
        moved = np.moveaxis(keep, im.axis, 0)
        kept_slices = np.zeros(im.n_slices, bool)
        for ci, cs, ch in chosen:
            if ci != i:
                continue
            target = moved if cs is None else moved[cs]
            (target if ch is None else half_of(target, ch, im.split.at, im.split.plane_axis(im.axis)))[...] = True
            kept_slices[slice(None) if cs is None else cs] = True
        im.mask[~keep] = 0
        im.confirmed_empty[~kept_slices] = False
        im.mask_changed()
    if per == "half":
        return sum(int(im.half_annotated().sum()) if im.split is not None else int(im.annotated().sum()) for im in study.images)
    return sum(int(im.annotated().sum()) for im in study.images)
