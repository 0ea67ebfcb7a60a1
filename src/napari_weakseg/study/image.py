"""One study image: its volume, slicing axis, a tag per slice (or per half-slice), sparse masks, and the
annotated rule; ``Tag`` and the undo record ``Edit``. Edited through :class:`~napari_weakseg.study.model.Study`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np

from ..errors import InputError
from ..io.case import Volume
from .halves import HalfSplit, half_of


class Tag(IntEnum):
    UNKNOWN = 0
    PRESENCE = 1
    ABSENCE = 2

    @property
    def char(self) -> str:
        return "upa"[self]

    @classmethod
    def parse(cls, value) -> Tag:
        if isinstance(value, Tag):
            return value
        text = str(value).strip().lower()
        for tag in cls:
            if text in (tag.name.lower(), tag.char):
                return tag
        raise InputError(f"unknown tag {value!r}; use presence, absence or unknown")


@dataclass
class Edit:
    """What an undoable edit changed on one image (the old values)."""

    image: int
    slices: np.ndarray
    tags: np.ndarray
    confirmed_empty: np.ndarray
    mask_slices: np.ndarray | None = None  # (len(slices), ...) when the edit touched the mask
    half_tags: np.ndarray | None = None  # (len(slices), 2) on a split image


@dataclass
class StudyImage:
    """One image of a study.

    volume:  the image, (C, Z, Y, X).
    mask:    (Z, Y, X) integer labels; pixels > 0 are lesion.
    tags:    (n_slices,) uint8 :class:`Tag` values along ``axis``.
    confirmed_empty: (n_slices,) bool, presence slices confirmed "annotated, no lesion".
    split:   a :class:`HalfSplit`, or None (whole slices, the default).
    half_tags: (n_slices, 2) uint8 :class:`Tag` per half-slice when split (then ``tags`` is their summary).
    """

    name: str
    volume: Volume
    mask: np.ndarray
    axis: int = 0
    tags: np.ndarray = None
    confirmed_empty: np.ndarray = None
    mask_revision: int = 0
    split: HalfSplit | None = None
    half_tags: np.ndarray | None = None
    _content: np.ndarray | None = field(default=None, repr=False)
    _half_content: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.axis not in (0, 1, 2):
            raise InputError(f"slice axis must be 0, 1 or 2; got {self.axis}")
        if tuple(self.mask.shape) != self.volume.shape:
            raise InputError(f"{self.name}: mask shape {tuple(self.mask.shape)} does not match the image shape {self.volume.shape}")
        n = self.n_slices
        self.tags = np.zeros(n, np.uint8) if self.tags is None else np.asarray(self.tags, np.uint8)
        self.confirmed_empty = np.zeros(n, bool) if self.confirmed_empty is None else np.asarray(self.confirmed_empty, bool)
        if len(self.tags) != n or len(self.confirmed_empty) != n:
            raise InputError(f"{self.name}: {len(self.tags)} tags for {n} slices")
        if self.split is not None:
            self.split.check(self.volume.shape, self.axis)
            if self.half_tags is None:  # splitting a tagged image: each half starts with its slice's tag
                self.half_tags = np.repeat(self.tags[:, None], 2, axis=1)
            self.half_tags = np.asarray(self.half_tags, np.uint8)
            if self.half_tags.shape != (n, 2) or self.half_tags.max(initial=0) > 2:
                raise InputError(f"{self.name}: half-slice tags of shape {self.half_tags.shape} for {n} slices")
            self.sync_tags()
        elif self.half_tags is not None:
            raise InputError(f"{self.name}: half-slice tags without a split")

    def sync_tags(self) -> None:
        """Per-slice tags from the halves': presence if either half is, absence if both are, else unknown."""
        h = self.half_tags
        self.tags[:] = np.where((h == Tag.PRESENCE).any(1), Tag.PRESENCE, np.where((h == Tag.ABSENCE).all(1), Tag.ABSENCE, Tag.UNKNOWN))

    @property
    def n_slices(self) -> int:
        return self.volume.shape[self.axis]

    def mask_slice(self, index: int) -> np.ndarray:
        """The 2D mask of one slice (a view)."""
        return np.take(self.mask, index, axis=self.axis) if self.axis else self.mask[index]

    def image_slice(self, index: int) -> np.ndarray:
        """(C, H, W) image of one slice (a view)."""
        return np.take(self.volume.data, index, axis=self.axis + 1)

    def has_content(self) -> np.ndarray:
        """(n_slices,) bool: the slice has painted mask pixels. Cached until the mask changes."""
        if self._content is None:
            other = tuple(a for a in range(3) if a != self.axis)
            self._content = (self.mask > 0).any(axis=other)
        return self._content

    def half_mask(self, index: int, half: int) -> np.ndarray:
        """The 2D mask of one half-slice (a view); the image must be split."""
        return half_of(self.mask_slice(index), half, self.split.at, self.split.plane_axis(self.axis))

    def half_content(self) -> np.ndarray:
        """(n_slices, 2) bool: the half-slice has painted mask pixels (split images). Cached."""
        if self._half_content is None:
            other = tuple(a for a in range(3) if a != self.axis)
            self._half_content = np.stack(
                [(half_of(self.mask, h, self.split.at, self.split.axis) > 0).any(axis=other) for h in (0, 1)], axis=1
            )
        return self._half_content

    def half_annotated(self) -> np.ndarray:
        """(n_slices, 2) bool: presence half-slices whose mask is known (split images)."""
        return (self.half_tags == Tag.PRESENCE) & (self.half_content() | self.confirmed_empty[:, None])

    def annotated(self) -> np.ndarray:
        """(n_slices,) bool: presence slices whose mask is known (split: either half is)."""
        if self.split is not None:
            return self.half_annotated().any(1)
        return (self.tags == Tag.PRESENCE) & (self.has_content() | self.confirmed_empty)

    def counts(self) -> dict[str, int]:
        c = {
            "slices": self.n_slices,
            "presence": int((self.tags == Tag.PRESENCE).sum()),
            "absence": int((self.tags == Tag.ABSENCE).sum()),
            "unknown": int((self.tags == Tag.UNKNOWN).sum()),
            "annotated": int(self.annotated().sum()),
        }
        if self.split is not None:
            c.update(
                {
                    "presence halves": int((self.half_tags == Tag.PRESENCE).sum()),
                    "absence halves": int((self.half_tags == Tag.ABSENCE).sum()),
                    "unknown halves": int((self.half_tags == Tag.UNKNOWN).sum()),
                    "annotated halves": int(self.half_annotated().sum()),
                }
            )
        return c

    def mask_changed(self) -> None:
        self._content = None
        self._half_content = None
        self.mask_revision += 1


def safe_name(name: str) -> str:
    """A name usable as a file name: letters, digits, '.', '_' and '-'."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"
    return name
