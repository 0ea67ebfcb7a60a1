"""The cluttered-digits synthetic task (Vorontsov et al., "Towards annotation-efficient
segmentation via image-to-image translation").

Each *presence* image holds one whole MNIST digit at a random position (fully
inside the image) over clutter; each *absence* image holds clutter alone. Clutter
is ``n_clutter`` random ``crop`` x ``crop`` (10 x 10) crops of *other* digits of
the same split, pasted at random positions and combined with ``np.maximum``. The
segmentation target is the digit: its pixels > 0.5 (after scaling to [0, 1]).

Three configurations of the paper are presets in :data:`DIGIT_TASKS`.
:func:`build_digits_study` writes such a set as a napari-weakseg study (one
"image" whose slices along axis 0 are the digit images, tagged presence /
absence, with masks kept on a small random fraction of the presence slices)
plus, optionally, the full ground truth as a NIfTI file for ``weakseg evaluate``.

MNIST comes from an ``.npz`` file with ``x_train`` (N, 28, 28) uint8, ``y_train``
(N,), ``x_test``, ``y_test`` -- the layout of ``keras.datasets.mnist``.
"""

from __future__ import annotations

import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

SPLITS = ("train", "test")
MAX_CROP_TRIES = 10  # a crop with no pixel > 0.5 is drawn again, up to this many times


@dataclass(frozen=True)
class DigitTask:
    """One configuration of the task: image ``size`` x ``size``, ``n_clutter`` crops of ``crop`` x ``crop``."""

    name: str
    size: int
    n_clutter: int
    crop: int = 10


DIGIT_TASKS: dict[str, DigitTask] = {
    "48-simple": DigitTask("48-simple", 48, 8),
    "48-hard": DigitTask("48-hard", 48, 24),
    "128": DigitTask("128", 128, 80),
}


@dataclass
class ClutteredDigits:
    """A generated set of N images.

    images:    (N, H, W) float32 in [0, 1].
    masks:     (N, H, W) uint8, 1 on the digit's pixels > 0.5; all zero for absence images.
    labels:    (N,) int64 digit class, -1 for absence images.
    presence:  (N,) bool.
    positions: (N, 2) int64 (row, column) of the digit's top-left corner; -1 for absence.
    sources:   (N,) int64 index of the digit in the split's arrays; -1 for absence.
    """

    images: np.ndarray
    masks: np.ndarray
    labels: np.ndarray
    presence: np.ndarray
    positions: np.ndarray
    sources: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, rows) -> ClutteredDigits:
        """The images of ``rows`` (in that order)."""
        return ClutteredDigits(*(getattr(self, f)[rows] for f in ("images", "masks", "labels", "presence", "positions", "sources")))


def get_task(task: str | DigitTask) -> DigitTask:
    if isinstance(task, DigitTask):
        return task
    try:
        return DIGIT_TASKS[str(task)]
    except KeyError:
        raise InputError(f"unknown digits task {task!r}; use one of {', '.join(DIGIT_TASKS)}") from None


def load_mnist(path: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read one split of an MNIST ``.npz``: ``(x, y)`` with x (N, h, w) float32 in [0, 1], y (N,) int64.

    Raises :class:`InputError` with a one-line reason for a missing or unusable file.
    """
    if split not in SPLITS:
        raise InputError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    path = Path(path)
    expected = "an .npz with x_train, y_train, x_test, y_test"
    if not path.is_file():
        raise InputError(f"{path}: no such MNIST file (expected {expected})")
    if not zipfile.is_zipfile(path):  # an .npz is a zip archive of .npy arrays
        raise InputError(f"{path.name}: not an .npz file (expected {expected})")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in (f"x_{split}", f"y_{split}") if k not in f.files]
            if missing:
                raise InputError(f"{path.name}: no {' or '.join(missing)} array (expected {expected})")
            x = np.asarray(f[f"x_{split}"])
            y = np.asarray(f[f"y_{split}"])
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        text = str(exc).strip().splitlines()
        raise InputError(f"{path.name}: not a readable MNIST .npz ({text[0][:160] if text else type(exc).__name__})") from None
    if x.ndim != 3 or x.shape[0] == 0:
        raise InputError(f"{path.name}: x_{split} must be (N, 28, 28) digits; got shape {x.shape}")
    if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
        raise InputError(f"{path.name}: y_{split} must hold one integer class per digit; got {y.dtype} {y.shape} for {x.shape[0]} digits")
    if x.dtype.kind in "iu":
        if x.min() < 0 or x.max() > 255:
            raise InputError(f"{path.name}: x_{split} values must lie in 0..255")
        x = x.astype(np.float32) / np.float32(255)
    elif x.dtype.kind == "f":
        if not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise InputError(f"{path.name}: floating-point x_{split} values must lie in [0, 1]")
        x = x.astype(np.float32)
    else:
        raise InputError(f"{path.name}: x_{split} has unusable type {x.dtype}")
    return x, y.astype(np.int64)


def make_cluttered_digits(
    mnist_path: str | os.PathLike,
    split: str = "train",
    n_presence: int = 1000,
    n_absence: int = 1000,
    size: int = 48,
    n_clutter: int = 8,
    seed: int = 0,
    crop: int = 10,
    shuffle: bool = True,
) -> ClutteredDigits:
    """Generate ``n_presence`` digit images and ``n_absence`` clutter-only images from an MNIST ``.npz``.

    Deterministic for a given file, arguments and ``seed``. With ``shuffle`` the
    presence and absence images are interleaved in a random order; without it
    the presence images come first. See :func:`cluttered_digits_from_arrays`.
    """
    x, y = load_mnist(mnist_path, split)
    return cluttered_digits_from_arrays(x, y, n_presence, n_absence, size, n_clutter, seed, crop, shuffle)


def cluttered_digits_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    n_presence: int,
    n_absence: int,
    size: int = 48,
    n_clutter: int = 8,
    seed: int = 0,
    crop: int = 10,
    shuffle: bool = True,
) -> ClutteredDigits:
    """As :func:`make_cluttered_digits`, from digits ``x`` (N, h, w) float in [0, 1] and classes ``y`` (N,).

    Presence digits are drawn without replacement while the split has enough
    (with replacement beyond). A clutter crop comes from a digit other than the
    image's own; crops without any pixel > 0.5 (the empty margins of MNIST) are
    drawn again, up to 10 times, so clutter is visible.
    """
    n_presence, n_absence, size, n_clutter, crop = (int(v) for v in (n_presence, n_absence, size, n_clutter, crop))
    if n_presence < 0 or n_absence < 0 or n_presence + n_absence == 0:
        raise InputError(f"ask for at least one image (got {n_presence} presence, {n_absence} absence)")
    if n_clutter < 0:
        raise InputError(f"the number of clutter crops must be >= 0; got {n_clutter}")
    if seed < 0:
        raise InputError(f"the seed must be >= 0; got {seed}")
    n, h, w = x.shape
    if h > size or w > size:
        raise InputError(f"digits of {h}x{w} do not fit in {size}x{size} images")
    if not 1 <= crop <= min(h, w):
        raise InputError(f"clutter crops of {crop}x{crop} do not fit in {h}x{w} digits")
    if n < 2 and n_clutter > 0:
        raise InputError("clutter needs at least two digits in the split")
    rng = np.random.default_rng(seed)
    total = n_presence + n_absence
    images = np.zeros((total, size, size), np.float32)
    masks = np.zeros((total, size, size), np.uint8)
    labels = np.full(total, -1, np.int64)
    positions = np.full((total, 2), -1, np.int64)
    sources = np.full(total, -1, np.int64)
    sources[:n_presence] = rng.choice(n, size=n_presence, replace=n_presence > n)
    inked = _inked_crops(x, crop)
    for i in range(total):
        own = int(sources[i])
        _paste_clutter(images[i], x, inked, own, n_clutter, crop, rng)
        if own >= 0:
            r, c = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
            digit = x[own]
            np.maximum(images[i, r : r + h, c : c + w], digit, out=images[i, r : r + h, c : c + w])
            masks[i, r : r + h, c : c + w] = digit > 0.5
            labels[i] = y[own]
            positions[i] = (r, c)
    presence = sources >= 0
    order = rng.permutation(total) if shuffle else np.arange(total)
    return ClutteredDigits(images[order], masks[order], labels[order], presence[order], positions[order], sources[order])


def _inked_crops(x: np.ndarray, crop: int) -> np.ndarray:
    """(N, h - crop + 1, w - crop + 1) bool: the crop at that offset has a pixel > 0.5 (integral image)."""
    ink = np.pad((x > 0.5).astype(np.int32), ((0, 0), (1, 0), (1, 0))).cumsum(1).cumsum(2)
    counts = ink[:, crop:, crop:] - ink[:, :-crop, crop:] - ink[:, crop:, :-crop] + ink[:, :-crop, :-crop]
    return counts > 0


def _paste_clutter(
    canvas: np.ndarray, x: np.ndarray, inked: np.ndarray, own: int, n_clutter: int, crop: int, rng: np.random.Generator
) -> None:
    """Paste ``n_clutter`` crops of digits other than ``own`` (-1: any) onto ``canvas`` in place."""
    if n_clutter == 0:
        return
    n, h, w = x.shape
    size_y, size_x = canvas.shape
    if own >= 0:  # any digit but the image's own
        src = rng.integers(0, n - 1, size=n_clutter)
        src += src >= own
    else:
        src = rng.integers(0, n, size=n_clutter)
    at_r = rng.integers(0, size_y - crop + 1, size=n_clutter)
    at_c = rng.integers(0, size_x - crop + 1, size=n_clutter)
    off_r = rng.integers(0, h - crop + 1, size=n_clutter)
    off_c = rng.integers(0, w - crop + 1, size=n_clutter)
    for _ in range(MAX_CROP_TRIES - 1):
        empty = np.flatnonzero(~inked[src, off_r, off_c])
        if not len(empty):
            break
        off_r[empty] = rng.integers(0, h - crop + 1, size=len(empty))
        off_c[empty] = rng.integers(0, w - crop + 1, size=len(empty))
    win = np.arange(crop)
    pieces = x[src[:, None, None], (off_r[:, None] + win)[:, :, None], (off_c[:, None] + win)[:, None, :]]
    # overlapping crops combine by maximum (ufunc.at applies repeated indices one by one)
    np.maximum.at(canvas, ((at_r[:, None] + win)[:, :, None], (at_c[:, None] + win)[:, None, :]), pieces)


def build_digits_study(
    out_folder: str | os.PathLike,
    mnist_path: str | os.PathLike,
    task: str | DigitTask = "48-simple",
    split: str = "train",
    n_presence: int = 1000,
    n_absence: int = 1000,
    label_fraction: float = 0.01,
    label_digit: int | None = None,
    seed: int = 0,
    truth_path: str | os.PathLike | None = None,
    n_val: int = 0,
):
    """Write a cluttered-digits study folder and return the :class:`~napari_weakseg.study.Study`.

    The study has one image, ``digits-<task>-<split>``, of shape (N, size, size):
    slice ``i`` along axis 0 is digit image ``i``, tagged presence or absence.
    Masks are kept on ``round(label_fraction * n_presence)`` presence slices (at
    least one when the fraction is > 0), drawn at random -- only among slices
    showing digit ``label_digit`` when it is given (the paper's "1 % of the
    labels, from digit 9 only"); the other masks are erased, their tags stay.

    ``truth_path`` (a ``.nii``/``.nii.gz`` path): also write every slice's full
    ground-truth mask there (uint8, 1 = digit), on the same grid as the study
    image, for ``weakseg evaluate``. Nothing is written if an argument is unusable.

    ``n_val`` > 0: a second image, ``digits-<task>-val``, of ``n_val`` presence and ``n_val`` absence images with
    every mask, for model selection (``TrainConfig.val_images``); its digits are none of the training image's
    (drawn without replacement from the split as long as it has enough).
    """
    from ..io.case import Volume
    from ..io.nifti import is_nifti_path, write_nifti
    from ..study.folder import check_new_folder, save_study
    from ..study.model import Study, Tag

    task = get_task(task)
    label_fraction = float(label_fraction)
    if not 0.0 <= label_fraction <= 1.0:
        raise InputError(f"the label fraction must lie between 0 and 1; got {label_fraction}")
    if truth_path is not None and not is_nifti_path(truth_path):
        raise InputError(f"{Path(truth_path).name}: the ground truth is written as NIfTI; give a .nii or .nii.gz path")
    check_new_folder(out_folder)
    data = make_cluttered_digits(mnist_path, split, n_presence + n_val, n_absence + n_val, task.size, task.n_clutter, seed, task.crop)
    val = None
    if n_val:  # the last n_val presence and n_val absence images validate; their digits are the training image's none
        rows_p, rows_a = np.flatnonzero(data.presence), np.flatnonzero(~data.presence)
        val_rows = np.sort(np.concatenate([rows_p[-n_val:], rows_a[-n_val:]]))
        keep = np.setdiff1d(np.arange(len(data.presence)), val_rows)
        val, data = data.subset(val_rows), data.subset(keep)

    eligible = np.flatnonzero(data.presence if label_digit is None else data.presence & (data.labels == int(label_digit)))
    k = int(round(label_fraction * int(data.presence.sum())))
    if label_fraction > 0 and data.presence.any():
        k = max(k, 1)
        if not len(eligible):
            raise InputError(f"no presence image of the {split} split shows digit {label_digit}; nothing to label")
        if k > len(eligible):
            warnings.warn(
                f"only {len(eligible)} presence image(s) show digit {label_digit}; all of them keep their masks (asked for {k})",
                UserWarning,
                stacklevel=2,
            )
            k = len(eligible)
    labelled = np.sort(np.random.default_rng((seed, 1)).choice(eligible, size=k, replace=False)) if k else eligible[:0]

    sources = [str(Path(mnist_path).resolve())]
    volume = Volume(data.images[None], np.eye(4), None, (1.0, 1.0, 1.0), [f"digits-{task.name}"], sources)
    mask = np.zeros_like(data.masks)
    mask[labelled] = data.masks[labelled]
    study = Study()
    im = study.add_image(volume, name=f"digits-{task.name}-{split}", mask=mask, axis=0)
    im.tags[:] = np.where(data.presence, Tag.PRESENCE, Tag.ABSENCE).astype(np.uint8)
    # a labelled digit with no pixel > 0.5 (not in real MNIST) is still a known, empty mask
    im.confirmed_empty[labelled[~data.masks[labelled].any(axis=(1, 2))]] = True
    im.mask_changed()
    if val is not None:
        vim = study.add_image(
            Volume(val.images[None], np.eye(4), None, (1.0, 1.0, 1.0), [f"digits-{task.name}"], sources),
            name=f"digits-{task.name}-val",
            mask=val.masks.copy(),
            axis=0,
        )
        vim.tags[:] = np.where(val.presence, Tag.PRESENCE, Tag.ABSENCE).astype(np.uint8)
        vim.confirmed_empty[val.presence & ~val.masks.any(axis=(1, 2))] = True
        vim.mask_changed()
    save_study(study, out_folder)
    if truth_path is not None:
        write_nifti(truth_path, data.masks, affine=np.eye(4))  # the grid save_study gives the image (spacing 1)
    return study
