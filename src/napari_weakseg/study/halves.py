"""Half-slices: an image's slices cut in two along one in-plane axis (for a brain: the two hemispheres).

Vorontsov et al. (journal), Sec. IV-D: "we split the slices into two hemispheres and selected only those
half-slices of which at least 25% of the area is brain tissue ... In P, we also limited the minimal number
of tumor pixels to 1% of brain pixels." A healthy hemisphere at the level of a tumour is then an absence
sample that differs from a presence sample only by the tumour.

Axes: volumes are (Z, Y, X) in napari order, the NIfTI (i, j, k) reversed; a slice along ``slice_axis``
holds the other two axes in order, its plane axes 0 (rows) and 1 (columns).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError


@dataclass(frozen=True)
class HalfSplit:
    """axis: the volume axis (0 Z, 1 Y, 2 X) the slices are cut across; at: the index where half 1
    begins (half 0 = [0, at), half 1 = [at, n) along ``axis``)."""

    axis: int
    at: int

    def check(self, shape: tuple[int, int, int], slice_axis: int) -> HalfSplit:
        if self.axis not in (0, 1, 2) or self.axis == slice_axis:
            raise InputError(f"halves: the split axis must be an in-plane axis (not the slicing axis {slice_axis}); got {self.axis}")
        if not 0 < self.at < shape[self.axis]:
            raise InputError(f"halves: split position {self.at} outside 1..{shape[self.axis] - 1}")
        return self

    def plane_axis(self, slice_axis: int) -> int:
        """0 or 1: the axis of a 2-D slice (along ``slice_axis``) that the split cuts."""
        return [a for a in range(3) if a != slice_axis].index(self.axis)

    def to_json(self) -> dict:
        return {"axis": int(self.axis), "at": int(self.at)}

    @classmethod
    def from_json(cls, d) -> HalfSplit:
        if not isinstance(d, dict) or not all(isinstance(d.get(k), int) and not isinstance(d.get(k), bool) for k in ("axis", "at")):
            raise InputError(f"halves: a split is {{'axis': int, 'at': int}}; got {d!r}")
        return cls(d["axis"], d["at"])


def left_right_axis(affine: np.ndarray, slice_axis: int) -> int:
    """The in-plane volume axis (napari order) whose world direction is closest to the patient's
    left-right (RAS x), whatever the storage orientation (flipped, permuted or oblique)."""
    cols = np.asarray(affine, float)[:3, :3]
    best, score = None, -1.0
    for a in range(3):
        if a == slice_axis:
            continue
        d = cols[:, 2 - a]  # napari axis a is NIfTI axis 2 - a
        s = abs(d[0]) / max(float(np.linalg.norm(d)), 1e-12)
        if s > score:
            best, score = a, s
    return best


def middle_of(roi: np.ndarray | None, axis: int, shape: tuple[int, int, int]) -> int:
    """The middle of the ROI's extent along ``axis`` (the midline for a brain mask); without an ROI, or
    an empty one, the middle of the axis. Clamped to 1..n-1 so both halves exist."""
    n = shape[axis]
    if roi is not None and (roi > 0).any():
        other = tuple(a for a in range(3) if a != axis)
        idx = np.flatnonzero((roi > 0).any(axis=other))
        mid = int(round((idx[0] + idx[-1] + 1) / 2))
    else:
        mid = n // 2
    return min(max(mid, 1), n - 1)


def foreground(data: np.ndarray) -> np.ndarray:
    """(Z, Y, X) bool from (C, Z, Y, X) data: voxels that differ from the corner voxel in some channel (the
    head of a skull-stripped scan, whose background is one value)."""
    return (data != data[:, :1, :1, :1]).any(axis=0)


def half_names(affine: np.ndarray, slice_axis: int, split: HalfSplit | None, from_file: bool = True) -> tuple[str, str]:
    """What to call half 0 and half 1: the patient's side ("left" / "right") when the cut runs across the
    left-right axis of an image from a file with a header; "half 0" / "half 1" otherwise (orientation unknown).
    RAS+: the world x grows towards the patient's right, so half 0 (the lower indices) is on the left when
    the split axis points to +x."""
    if split is None or not from_file or left_right_axis(affine, slice_axis) != split.axis:
        return "half 0", "half 1"
    return ("left", "right") if np.asarray(affine, float)[0, 2 - split.axis] > 0 else ("right", "left")


def half_of(x: np.ndarray, half: int, at: int, axis: int) -> np.ndarray:
    """The part of ``x`` on side ``half`` (0 or 1) of ``at`` along ``axis`` (a view)."""
    index = [slice(None)] * x.ndim
    index[axis] = slice(0, at) if half == 0 else slice(at, None)
    return x[tuple(index)]
