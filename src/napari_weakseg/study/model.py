"""The Study model: what a user annotates and what training reads.

Per image: a slicing axis, one tag per slice (presence / absence / unknown), a
labels volume of sparse masks, and which slices are *annotated*. A slice is
annotated when it is tagged presence and either has painted mask pixels or was
explicitly confirmed as "annotated, no lesion". Absence slices are known to be
empty and need no mask. Every tag/annotation edit can be undone.

An image may be split into two halves (:mod:`.halves`, e.g. the hemispheres): each half-slice then has
its own tag and annotated state, and the per-slice ``tags`` summarise them (presence when either half is,
absence when both are, unknown otherwise). "Annotated, no lesion" stays a per-slice confirmation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from psygnal import Signal

from ..errors import InputError
from ..io.case import Volume, as_label_dtype
from .halves import HalfSplit
from .image import Edit, StudyImage, Tag, safe_name


class Study:
    """A set of images with tags and sparse masks. ``changed(image_index)`` fires on every edit."""

    changed = Signal(int)

    def __init__(self, folder: str | Path | None = None):
        self.images: list[StudyImage] = []
        self.folder = Path(folder) if folder else None
        self._undo: list[Edit] = []
        self._edit_count = 0  # bumps on every change; compared with the saved count
        self._saved_count = 0
        self._saved_mask_revisions: dict[str, int] = {}
        self._files: dict[str, dict] = {}  # name -> files written in the folder
        self._manifest_digest: str | None = None  # of study.json as this study last read or wrote it
        self.classes: dict[int, str] = {}  # lesion class names by mask label (e.g. BraTS 1 necrosis); {}: one lesion

    def set_classes(self, names: dict[int, str]) -> None:
        """Name the mask labels (1..65535) as lesion classes; {} for one whole lesion."""
        self.classes = check_classes(names)
        self._touch_study()
        for i in range(len(self.images)):  # every image's outputs and docks name the classes: each has changed
            self.changed.emit(i)

    def class_names(self, n_classes: int) -> list[str]:
        """Names of labels 1..``n_classes`` ("label k" where the study names none)."""
        return [self.classes.get(k, f"label {k}") for k in range(1, n_classes + 1)]

    def _touch_study(self) -> None:
        self._edit_count += 1

    # --- building -----------------------------------------------------------
    def add_image(self, volume: Volume, name: str | None = None, mask: np.ndarray | None = None, axis: int = 0) -> StudyImage:
        """Add an image; ``mask`` (Z, Y, X) is optional. Returns the new :class:`StudyImage`."""
        name = self.unique_name(safe_name(name or (volume.channel_names[0] if volume.channel_names else "image")))
        mask = np.zeros(volume.shape, np.uint8) if mask is None else as_label_dtype(np.asarray(mask))
        img = StudyImage(name, volume, mask, axis)
        self.images.append(img)
        self._touch(len(self.images) - 1)
        return img

    def unique_name(self, name: str) -> str:
        taken = {im.name for im in self.images}
        candidate, k = name, 2
        while candidate in taken:
            candidate, k = f"{name}_{k}", k + 1
        return candidate

    def index_of(self, image: int | str | StudyImage) -> int:
        if isinstance(image, StudyImage):
            return self.images.index(image)
        if isinstance(image, str):
            for i, im in enumerate(self.images):
                if im.name == image:
                    return i
            raise InputError(f"no image named {image!r} in this study")
        if not 0 <= image < len(self.images):
            raise InputError(f"image index {image} out of range (the study has {len(self.images)})")
        return image

    # --- edits (all undoable) -------------------------------------------------
    def set_tags(self, image, slices, tag, half: int | None = None) -> None:
        """Tag ``slices`` (an int, a list or a ``range``) of ``image`` as ``tag``; on a split image
        ``half`` (0 or 1) tags that half only, None both.

        Tagging absence erases the painted mask there (absence means no lesion); undo brings the paint back.
        """
        i = self.index_of(image)
        im = self.images[i]
        tag = Tag.parse(tag)
        idx = self._slice_indices(im, slices)
        if half is not None and (im.split is None or half not in (0, 1)):
            raise InputError(f"{im.name}: no half {half!r} (the image is {'split in halves 0 and 1' if im.split else 'not split'})")
        halves = (0, 1) if half is None else (half,)
        if tag != Tag.ABSENCE:
            erase = []
        elif im.split is None:
            erase = [(s, None) for s in idx[im.has_content()[idx]]]
        else:
            erase = [(s, h) for h in halves for s in idx[im.half_content()[idx, h]]]
        self._record(i, idx, with_mask=len(erase) > 0)
        if im.split is None:
            im.tags[idx] = tag
        else:
            im.half_tags[np.ix_(idx, halves)] = tag
            im.sync_tags()
        if tag != Tag.PRESENCE:
            im.confirmed_empty[idx[im.tags[idx] != Tag.PRESENCE]] = False
        if erase:
            for s, h in erase:
                (self._mask_view(im, s) if h is None else im.half_mask(s, h))[...] = 0
            im.mask_changed()
        self._touch(i)

    def set_split(self, image, split: HalfSplit | None) -> None:
        """Split ``image`` into two halves (each starts with its slice's tag), move the split, or
        (``None``) join the halves again (the per-slice summary tags stay). Clears the undo history of
        this image's edits, which were recorded for the old halves."""
        i = self.index_of(image)
        im = self.images[i]
        if split is None:
            im.split, im.half_tags = None, None
        else:
            split.check(im.volume.shape, im.axis)
            if im.split is None:
                im.half_tags = np.repeat(im.tags[:, None], 2, axis=1)
            im.split = split  # a moved split keeps the halves' tags
            im.sync_tags()
        im.mask_changed()
        self._undo = [e for e in self._undo if e.image != i]
        self._touch(i)

    def clear_tags(self, image) -> None:
        """Set every slice of ``image`` to unknown (undoable)."""
        im = self.images[self.index_of(image)]
        self.set_tags(image, range(im.n_slices), Tag.UNKNOWN)

    def accept_masks(self, image, slices, masks: np.ndarray) -> None:
        """Take ``masks`` (len(slices), H, W) as the annotation of ``slices`` (undoable).

        The retraining loop's "accept as annotation": a slice with lesion pixels
        becomes presence and annotated; an empty one becomes absence.
        """
        i = self.index_of(image)
        im = self.images[i]
        given = np.atleast_1d(np.asarray(list(slices) if isinstance(slices, range) else slices, dtype=np.int64))
        idx = self._slice_indices(im, given)  # sorted, unique, in range
        masks = np.asarray(masks)
        if len(idx) != len(given) or masks.shape != (len(idx), *self._mask_view(im, 0).shape):
            raise InputError(f"one mask of shape {self._mask_view(im, 0).shape} per distinct slice expected; got {masks.shape}")
        masks = masks[np.argsort(given)]
        self._record(i, idx, with_mask=True)
        for s, m in zip(idx, masks, strict=True):
            self._mask_view(im, s)[...] = m
        im.mask_changed()
        if im.split is None:
            im.tags[idx] = np.where(im.has_content()[idx], Tag.PRESENCE, Tag.ABSENCE)
        else:
            im.half_tags[idx] = np.where(im.half_content()[idx], Tag.PRESENCE, Tag.ABSENCE)
            im.sync_tags()
        im.confirmed_empty[idx] = False
        self._touch(i)

    def confirm_empty(self, image, slices, value: bool = True) -> None:
        """Mark presence slices as "annotated, no lesion" (or take that back).

        Refused for slices that are not presence or that have painted pixels.
        """
        i = self.index_of(image)
        im = self.images[i]
        idx = self._slice_indices(im, slices)
        if value:
            if (im.tags[idx] != Tag.PRESENCE).any():
                raise InputError("only presence slices can be marked 'annotated, no lesion'")
            if im.has_content()[idx].any():
                raise InputError("the slice has painted lesion pixels; erase them before marking it 'no lesion'")
        self._record(i, idx)
        im.confirmed_empty[idx] = value
        self._touch(i)

    def mask_painted(self, image, slices=None) -> list[int]:
        """Tell the study that the user painted on ``slices`` (the mask array was changed in place).

        ``slices`` defaults to every slice of the image (e.g. after an undo of the paint).

        Unknown slices that now hold lesion pixels become presence (painting a lesion
        says it is visible). Returns the absence slices that were painted on, which
        the caller should warn about (see :meth:`set_tags` to retag them).
        """
        i = self.index_of(image)
        im = self.images[i]
        idx = self._slice_indices(im, range(im.n_slices) if slices is None else slices)
        im.mask_changed()
        content = im.has_content()[idx]
        if im.split is None:
            newly_presence = idx[content & (im.tags[idx] == Tag.UNKNOWN)]
            painted_absence = content & (im.tags[idx] == Tag.ABSENCE)
        else:
            hc, ht = im.half_content()[idx], im.half_tags[idx]
            newly_presence = idx[(hc & (ht == Tag.UNKNOWN)).any(1)]
            painted_absence = (hc & (ht == Tag.ABSENCE)).any(1)
        if len(newly_presence):
            self._record(i, newly_presence)
            if im.split is None:
                im.tags[newly_presence] = Tag.PRESENCE
            else:
                ht = im.half_tags[newly_presence]
                ht[im.half_content()[newly_presence] & (ht == Tag.UNKNOWN)] = Tag.PRESENCE
                im.half_tags[newly_presence] = ht
                im.sync_tags()
        im.confirmed_empty[idx[content]] = False
        self._touch(i)
        return [int(s) for s in idx[painted_absence]]

    def undo(self) -> bool:
        """Undo the last tag/annotation edit. Returns False when there is nothing to undo."""
        if not self._undo:
            return False
        e = self._undo.pop()
        im = self.images[e.image]
        im.tags[e.slices] = e.tags
        if e.half_tags is not None:
            im.half_tags[e.slices] = e.half_tags
        im.confirmed_empty[e.slices] = e.confirmed_empty
        if e.mask_slices is not None:
            for s, old in zip(e.slices, e.mask_slices, strict=True):
                self._mask_view(im, s)[...] = old
            im.mask_changed()
        self._touch(e.image)
        return True

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    # --- derived -----------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        total = {"images": len(self.images), "slices": 0, "presence": 0, "absence": 0, "unknown": 0, "annotated": 0}
        for im in self.images:
            for k, v in im.counts().items():
                total[k] = total.get(k, 0) + v
        return total

    @property
    def modified(self) -> bool:
        """True when there are changes not yet saved."""
        return self._edit_count != self._saved_count

    # --- helpers -------------------------------------------------------------------
    def _slice_indices(self, im: StudyImage, slices) -> np.ndarray:
        idx = np.atleast_1d(np.asarray(list(slices) if isinstance(slices, range) else slices, dtype=np.int64))
        if idx.size and (idx.min() < 0 or idx.max() >= im.n_slices):
            raise InputError(f"slice out of range 0..{im.n_slices - 1}")
        return np.unique(idx)

    @staticmethod
    def _mask_view(im: StudyImage, s: int) -> np.ndarray:
        return np.moveaxis(im.mask, im.axis, 0)[s]

    def _record(self, i: int, idx: np.ndarray, with_mask: bool = False) -> None:
        im = self.images[i]
        masks = np.stack([self._mask_view(im, s).copy() for s in idx]) if with_mask else None
        halves = im.half_tags[idx].copy() if im.split is not None else None
        self._undo.append(Edit(i, idx.copy(), im.tags[idx].copy(), im.confirmed_empty[idx].copy(), masks, halves))
        del self._undo[:-200]  # bounded history

    def _touch(self, i: int) -> None:
        self._edit_count += 1
        self.changed.emit(i)


def check_classes(names) -> dict[int, str]:
    """``names`` as {label: name}: labels whole numbers 1..65535 (or their decimal strings, as JSON keeps them),
    names non-empty text of at most 64 characters; an InputError names what is wrong."""
    if not isinstance(names, dict):
        raise InputError(f"lesion classes: a mapping of label to name, not {type(names).__name__}")
    out = {}
    for key, name in names.items():
        label = int(key) if isinstance(key, str) and key.isdigit() else key
        if isinstance(label, bool) or not isinstance(label, int) or not 1 <= label <= 65535:
            raise InputError(f"lesion classes: label {key!r} is not a whole number 1..65535")
        if not isinstance(name, str) or not name.strip() or len(name) > 64:
            raise InputError(f"lesion classes: the name of label {label} must be text of 1 to 64 characters, not {name!r}")
        out[label] = name.strip()
    return dict(sorted(out.items()))
