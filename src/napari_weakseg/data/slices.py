"""Training data from a Study: tagged slices as tensors, intensity normalisation, P/A batches.

Shapes: images (N, C, S, S) float32 normalised; masks (N, 1, S, S) float32 0/1
(lesion = label > 0), or with ``labels=True`` the integer labels 0..K (as float32, resized
nearest-neighbour); ``presence``/``annotated`` (N,) bool.

A split image (``study.halves``) gives one row per tagged half-slice, cut at the split and resized like a
whole slice; with ``flip_halves`` half 1 is mirrored across the cut, so that every row has the cut (for a
brain: the midline) on the same side.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from ..errors import InputError
from ..study.halves import half_of
from ..study.model import Study, StudyImage, Tag


@dataclass
class Normaliser:
    """Per-channel linear map of the 1st..99th percentile (over the study's tagged slices) to [-1, 1];
    with ``clip``, values beyond are clipped to [-1, 1] (the range of a tanh output)."""

    low: list[float]
    high: list[float]
    clip: bool = False
    kind: str = "percentile-1-99"  # or "none": the identity (low -1, high 1)

    @classmethod
    def fit(cls, study: Study, max_voxels: int = 2_000_000, seed: int = 0, clip: bool = False, kind: str = "percentile") -> Normaliser:
        """``kind="none"``: the intensities are used as stored (already normalised, e.g. by a data set's own
        preprocessing): the identity map, low -1 and high 1 per channel."""
        chans = study.images[0].volume.data.shape[0]
        if kind == "none":
            return cls([-1.0] * chans, [1.0] * chans, clip, "none")
        if kind != "percentile":
            raise InputError(f"unknown intensity normalisation {kind!r}; use percentile or none")
        rng = np.random.default_rng(seed)
        samples = [[] for _ in range(chans)]
        for im in study.images:
            data = im.volume.data.reshape(chans, -1)
            take = rng.choice(data.shape[1], size=min(data.shape[1], max_voxels // len(study.images)), replace=False)
            for c in range(chans):
                samples[c].append(data[c, take])
        low, high = [], []
        for c in range(chans):
            v = np.concatenate(samples[c])
            lo, hi = np.percentile(v, [1, 99])
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise InputError(f"channel {c + 1}: non-finite intensities (NaN or inf); cannot normalise the images")
            if hi - lo < 1e-6:
                hi = lo + 1.0
            low.append(float(lo))
            high.append(float(hi))
        return cls(low, high, clip)

    def apply(self, x: np.ndarray | torch.Tensor, channel_axis: int = 0):
        """Normalise an array whose ``channel_axis`` holds the channels."""
        shape = [1] * x.ndim
        shape[channel_axis] = len(self.low)
        lo = np.asarray(self.low, np.float32).reshape(shape)
        hi = np.asarray(self.high, np.float32).reshape(shape)
        if isinstance(x, torch.Tensor):
            lo, hi = torch.as_tensor(lo, device=x.device), torch.as_tensor(hi, device=x.device)
        y = (x - lo) / (hi - lo) * 2 - 1
        if not self.clip:
            return y
        return y.clamp(-1.0, 1.0) if isinstance(y, torch.Tensor) else np.clip(y, -1.0, 1.0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "low": self.low, "high": self.high, "clip": self.clip}

    @classmethod
    def from_dict(cls, d: dict) -> Normaliser:
        low, high = [float(v) for v in d["low"]], [float(v) for v in d["high"]]
        if not all(np.isfinite(low + high)) or len(low) != len(high) or not low:
            raise InputError("the run's intensity normaliser is damaged (non-finite or missing values); refused")
        return cls(low, high, bool(d.get("clip", False)), str(d.get("kind", "percentile-1-99")))


@dataclass
class SliceSet:
    images: torch.Tensor  # (N, C, S, S)
    masks: torch.Tensor  # (N, 1, S, S)
    presence: torch.Tensor  # (N,) bool
    annotated: torch.Tensor  # (N,) bool
    source: list[tuple[int, int]]  # (image index, slice index) of each row
    half: torch.Tensor | None = None  # (N,) int8: the half-slice (0, 1) of each row, -1 for a whole slice

    def __post_init__(self):
        if self.half is None:
            self.half = torch.full((len(self.images),), -1, dtype=torch.int8)

    def subset(self, rows) -> SliceSet:
        rows = torch.as_tensor(rows, dtype=torch.long)
        return SliceSet(
            self.images[rows],
            self.masks[rows],
            self.presence[rows],
            self.annotated[rows],
            [self.source[i] for i in rows.tolist()],
            self.half[rows],
        )

    def __len__(self) -> int:
        return len(self.images)


def resize_slices(x: torch.Tensor, size: int | None, multiple: int, mode: str = "bilinear") -> torch.Tensor:
    """(N, C, H, W) -> (N, C, S, S) with S = ``size``; with ``size=None`` pad (reflect) to a multiple."""
    if size is not None:
        if mode == "nearest":
            return F.interpolate(x, size=(size, size), mode="nearest")
        return F.interpolate(x, size=(size, size), mode=mode, align_corners=False)
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "constant")


def _rows(im: StudyImage) -> list[tuple[int, int]]:
    """(slice, half) of every tagged row of an image: half -1 for a whole slice."""
    if im.split is None:
        return [(int(r), -1) for r in np.flatnonzero(im.tags != Tag.UNKNOWN)]
    return [(int(r), int(h)) for r, h in zip(*np.nonzero(im.half_tags != Tag.UNKNOWN), strict=True)]


def cut_half(x: np.ndarray, half: int, at: int, flip: bool, width: int | None = None) -> np.ndarray:
    """(..., H, W) slice(s) -> half-slice ``half`` of the cut at ``at`` along the last axis, (..., H, D) with
    D = ``width`` or max(at, W - at): ``flip`` mirrors half 1 so its cut lies on the right, as half 0's does; a
    narrower half is padded (edge values) on the side away from the cut, so all halves have one shape (``width``:
    the halves of images cut at other positions too). Whole slices (half -1) pass."""
    if half < 0:
        return x
    n = x.shape[-1]
    part = half_of(x, half, at, x.ndim - 1)
    if flip and half == 1:
        part = part[..., ::-1]
    pad = (width or max(at, n - at)) - part.shape[-1]
    if pad:
        outer_left = half == 0 or flip
        part = np.pad(part, [(0, 0)] * (x.ndim - 1) + [(pad, 0) if outer_left else (0, pad)], mode="edge")
    return part


def put_half(y: np.ndarray, half: int, at: int, n: int, flip: bool) -> np.ndarray:
    """The inverse of ``cut_half`` for an output (..., H, max(at, n - at)): the half's own columns, in place order."""
    width = at if half == 0 else n - at
    outer_left = half == 0 or flip
    part = y[..., y.shape[-1] - width :] if outer_left else y[..., :width]
    return part[..., ::-1] if flip and half == 1 else part


def _half_width(study: Study) -> int | None:
    """The widest half-slice over the study's split images (max(at, n - at) along the cut axis), so that images
    cut at other positions (each brain's own midline) give half-slices of one shape at native size; None unsplit."""
    widths = [max(im.split.at, im.volume.shape[im.split.axis] - im.split.at) for im in study.images if im.split is not None]
    return max(widths) if widths else None


def study_slices(
    study: Study, normaliser: Normaliser, size: int | None, multiple: int, labels: bool = False, flip_halves: bool = False
) -> SliceSet:
    """Every presence/absence slice (or half-slice, on split images) of the study, normalised and resized.
    Masks are 0/1 (resized bilinearly, > 0.5), or with ``labels`` the integer labels (resized nearest-neighbour)."""
    images, masks, presence, annotated, source, halves = [], [], [], [], [], []
    chans, width = None, _half_width(study) if size is None else None  # resized rows need no common width
    for i, im in enumerate(study.images):
        c = im.volume.data.shape[0]
        if chans is None:
            chans = c
        elif c != chans:
            raise InputError(f"{im.name}: {c} channel(s), but the study's first image has {chans}; all images need the same channels")
        rows = _rows(im)
        if not rows:
            continue
        r = np.array([s for s, _ in rows])
        vol = np.moveaxis(im.volume.data, im.axis + 1, 1)[:, r]  # (C, n, H, W)
        msk = np.moveaxis(im.mask, im.axis, 0)[r]  # (n, H, W)
        if im.split is None:
            tag, ann = im.tags[r], im.annotated()[r]
        else:
            h = np.array([h for _, h in rows])
            tag, ann = im.half_tags[r, h], im.half_annotated()[r, h]
            if im.split.plane_axis(im.axis) == 0:  # cut across rows: work on the transpose, cut the last axis
                vol, msk = vol.swapaxes(-1, -2), msk.swapaxes(-1, -2)
        for half in sorted({h for _, h in rows}):
            sel = np.array([k for k, (_, hh) in enumerate(rows) if hh == half])
            at = im.split.at if im.split is not None else 0
            v = np.ascontiguousarray(cut_half(vol[:, sel], half, at, flip_halves, width))
            m = np.ascontiguousarray(cut_half(msk[sel], half, at, flip_halves, width))
            x = torch.from_numpy(np.ascontiguousarray(normaliser.apply(v).transpose(1, 0, 2, 3), dtype=np.float32))
            mt = torch.from_numpy((m if labels else m > 0).astype(np.float32))[:, None]
            images.append(resize_slices(x, size, multiple))
            if labels or not size:
                masks.append(resize_slices(mt, size, multiple, "nearest"))
            else:
                masks.append((resize_slices(mt, size, multiple, "bilinear") > 0.5).float())
            presence.append(torch.from_numpy(tag[sel] == Tag.PRESENCE))
            annotated.append(torch.from_numpy(ann[sel]))
            source += [(i, int(rows[k][0])) for k in sel]
            halves.append(torch.full((len(sel),), half, dtype=torch.int8))
    if not images:
        raise InputError("the study has no tagged slices; tag some slices presence or absence first")
    shapes = sorted({tuple(x.shape[-2:]) for x in images})
    if len(shapes) > 1:
        raise InputError(
            f"the training rows have different sizes ({', '.join(f'{h}x{w}' for h, w in shapes)}); set input_size to resize them"
        )
    return SliceSet(torch.cat(images), torch.cat(masks), torch.cat(presence), torch.cat(annotated), source, torch.cat(halves))


def split_validation(slices: SliceSet, fraction: float, seed: int = 0) -> tuple[SliceSet, SliceSet | None]:
    """Hold out ``fraction`` of the annotated slices of each image (at least one if the image has 2+).

    Returns (train, validation); validation is None when nothing can be held out.
    """
    if fraction <= 0:
        return slices, None
    rng = np.random.default_rng(seed)
    held = []
    images = sorted({img for img, _ in slices.source})
    for img in images:
        rows = [r for r, (i, _) in enumerate(slices.source) if i == img and bool(slices.annotated[r])]
        k = int(round(fraction * len(rows)))
        k = min(max(k, 1), len(rows) - 1) if len(rows) >= 2 else 0
        held += list(rng.choice(rows, size=k, replace=False)) if k else []
    if not held:
        return slices, None
    keep = sorted(set(range(len(slices))) - set(held))
    return slices.subset(keep), slices.subset(sorted(held))


def hold_out_images(slices: SliceSet, images: list[int]) -> tuple[SliceSet, SliceSet | None]:
    """Validation on whole images: the annotated rows of ``images`` validate, their other rows are not used,
    every row of the other images trains. Returns (train, validation or None when they have no annotated row)."""
    held = np.isin(np.array([i for i, _ in slices.source]), images)
    train = np.flatnonzero(~held)
    val = np.flatnonzero(held & slices.annotated.numpy())
    if not len(train):
        raise InputError("every image is held out for validation: nothing is left to train on")
    return slices.subset(train), slices.subset(val) if len(val) else None


def relative_positions(slices: SliceSet) -> torch.Tensor:
    """(N,) position of each row along its image's slicing axis, relative to the extent of that image's tagged
    slices in ``slices``: 0 at the first, 1 at the last (0.5 for an image with one tagged slice)."""
    index = torch.tensor([s for _, s in slices.source], dtype=torch.float64)
    image = torch.tensor([i for i, _ in slices.source])
    pos = torch.full_like(index, 0.5)
    for i in image.unique():
        rows = image == i
        lo, hi = index[rows].min(), index[rows].max()
        if hi > lo:
            pos[rows] = (index[rows] - lo) / (hi - lo)
    return pos


def position_matched_weights(slices: SliceSet, bins: int) -> torch.Tensor | None:
    """Sampling weights (n_absence,) of the absence rows so that the positions of drawn absence slices follow
    the ``bins``-bin histogram of the presence slices' positions (``relative_positions``); Vorontsov et al.
    (journal), Sec. IV-E, for liver: "we sampled healthy slices ... according to a 20-bin histogram of the axial
    positions of diseased slices". An absence slice in a bin without presence slices is never drawn. None when
    no absence slice shares a bin with a presence slice (nothing to match: draw uniformly)."""
    pos = relative_positions(slices)
    b = (pos * bins).long().clamp(max=bins - 1)
    p_hist = torch.bincount(b[slices.presence], minlength=bins).double()
    a_bins = b[~slices.presence]
    a_hist = torch.bincount(a_bins, minlength=bins).double()
    weights = p_hist[a_bins] / a_hist[a_bins].clamp(min=1)
    return weights if float(weights.sum()) > 0 else None


class PairSampler:
    """Yields index batches: B presence rows (``annotated_per_batch`` of them annotated) and B absence rows.

    ``mode``: "pairs" (as above), "annotated" (B annotated presence rows, twice) or "semi" (as
    "pairs", with no absence rows, an empty tensor, when the slices have none).

    Each epoch shuffles the presence and the absence rows; the shorter list is
    resampled to match the longer. ``mode="annotated"`` / ``"presence"``: only annotated
    presence rows / only presence rows, and the absence rows repeat them. Under DDP, rank r of W takes every W-th row of
    the same permutation, so ranks see disjoint shards.

    ``absence_bins`` > 0: each epoch draws its absence rows with replacement, weighted so that their positions
    along the slicing axis follow the presence rows' ``absence_bins``-bin histogram (``position_matched_weights``);
    ``self.position_matched`` says whether that was possible (else the absence rows are shuffled as usual).
    """

    def __init__(
        self,
        slices: SliceSet,
        batch_size: int,
        annotated_per_batch: int = 0,
        mode: str = "pairs",
        seed: int = 0,
        rank: int = 0,
        world: int = 1,
        absence_bins: int = 0,
    ):
        self.p_rows = torch.nonzero(slices.presence).flatten()
        self.a_rows = torch.nonzero(~slices.presence).flatten()
        self.ann_rows = torch.nonzero(slices.presence & slices.annotated).flatten()
        self.batch_size, self.mode = batch_size, mode
        self.k_ann = min(annotated_per_batch, batch_size) if len(self.ann_rows) else 0
        self.rank, self.world = rank, world
        self.gen = torch.Generator().manual_seed(seed)
        self.epoch = 0
        self.a_weights = position_matched_weights(slices, absence_bins) if absence_bins and len(self.a_rows) else None
        self.position_matched = self.a_weights is not None
        if mode in ("annotated", "semi") and not len(self.ann_rows):
            raise InputError("this method needs annotated slices: paint a mask on some presence slices")
        if mode == "presence" and not len(self.p_rows):
            raise InputError("this method needs presence slices; tag some slices presence")
        if mode == "pairs" and (not len(self.p_rows) or not len(self.a_rows)):
            raise InputError("this method needs both presence and absence slices; tag some slices of each")
        self._queue: list[tuple[torch.Tensor, torch.Tensor]] = []

    def steps_per_epoch(self) -> int:
        if self.mode in ("annotated", "presence"):
            n = len(self.ann_rows if self.mode == "annotated" else self.p_rows)
        else:
            n = max(len(self.p_rows), len(self.a_rows))
        return max(1, n // (self.batch_size * self.world))

    def _epoch(self):
        if self.mode in ("annotated", "presence"):
            rows = self.ann_rows if self.mode == "annotated" else self.p_rows
            p = self._shuffle(rows, max(len(rows), self.world))  # every rank gets a row
            a = p
        else:
            if self.a_weights is not None:  # as many absence rows as presence rows, drawn with replacement by position
                n = max(len(self.p_rows), self.world)
                p, a = (
                    self._shuffle(self.p_rows, n),
                    self.a_rows[torch.multinomial(self.a_weights, n, replacement=True, generator=self.gen)],
                )
            else:
                n = max(len(self.p_rows), len(self.a_rows), self.world)
                p, a = self._shuffle(self.p_rows, n), self._shuffle(self.a_rows, n) if len(self.a_rows) else self.a_rows
        per_rank = max(1, len(p) // self.world)  # every rank gets as many batches
        p, a = p[self.rank :: self.world][:per_rank], a[self.rank :: self.world][:per_rank]
        b = self.batch_size
        n_batches = max(1, per_rank // b)
        for j in range(n_batches):
            pb = p[j * b : (j + 1) * b]
            if len(pb) < b:  # fewer rows than a batch: draw with replacement
                pb = pb[torch.randint(len(pb), (b,), generator=self.gen)]
            if not len(a):  # "semi" without absence slices
                ab = a
            elif len(a) >= (j + 1) * b:
                ab = a[j * b : (j + 1) * b]
            else:
                ab = a[torch.randint(len(a), (b,), generator=self.gen)]
            if self.k_ann and self.mode != "annotated":
                pb = pb.clone()
                pb[: self.k_ann] = self.ann_rows[torch.randint(len(self.ann_rows), (self.k_ann,), generator=self.gen)]
            self._queue.append((pb, ab))
        self.epoch += 1

    def _shuffle(self, rows: torch.Tensor, n: int) -> torch.Tensor:
        reps = -(-n // len(rows))
        perm = torch.cat([rows[torch.randperm(len(rows), generator=self.gen)] for _ in range(reps)])
        return perm[:n]

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._queue:
            self._epoch()
        return self._queue.pop(0)


def slice_pixel_mm(study: Study, size: int | None) -> float:
    """Median over the study's images of the in-plane pixel size (mean of the two axes, in mm for NIfTI)
    of their slices after resizing to ``size`` (None: native)."""
    sizes = []
    for im in study.images:
        plane = [(s, n) for a, (s, n) in enumerate(zip(im.volume.spacing, im.volume.shape, strict=True)) if a != im.axis]
        sizes.append(float(np.mean([s * n / size if size else s for s, n in plane])))
    return float(np.median(sizes))
