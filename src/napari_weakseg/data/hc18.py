"""HC18 fetal head ultrasound as benchmark data (``bench/hc18.py``): finding and listing the images, the
train / test split by subject, square frames at a working size (aspect kept), and the filled annotations
(outlines closed, or completed by an ellipse fit where the image edge cuts them).

Data: ``DATA/hc18/images/NNN_HC.png`` (+ ``NNN_HC_Annotation.png``) and
``DATA/hc18/training_set_pixel_size_and_HC.csv`` (filename, pixel size (mm), head circumference (mm)).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

CSV_NAME = "training_set_pixel_size_and_HC.csv"


@dataclass
class HC18Set:
    names: list[str]
    images: np.ndarray  # (N, S, S) float32, the stored grey values, zero-padded
    masks: np.ndarray  # (N, S, S) bool, filled annotations at the working resolution
    pixel_mm: np.ndarray  # (N,) pixel size at the working resolution
    native_pixel_mm: np.ndarray  # (N,) the csv's
    hc_mm: np.ndarray  # (N,) the csv's head circumference
    fitted: int  # annotations whose outline did not close (cut by the image edge): filled by an ellipse fit


def find_hc18(data: Path) -> Path:
    """The HC18 folder: ``data`` itself or ``data/hc18``, holding images/ and the csv."""
    data = Path(data)
    for folder in (data, data / "hc18"):
        if (folder / "images").is_dir() and (folder / CSV_NAME).is_file():
            return folder
    raise InputError(f"{data}: no HC18 data (expected DATA/hc18/images/NNN_HC.png and DATA/hc18/{CSV_NAME})")


def list_hc18(folder: Path) -> tuple[list[str], dict[str, tuple[float, float]]]:
    """Image file names (sorted naturally, annotated ones only) and the csv's (pixel mm, HC mm) by name."""
    from ..io.image_folder import natural_key

    table = {}
    with open(folder / CSV_NAME, newline="") as fh:
        for row in csv.reader(fh):
            if len(row) >= 3 and row[0].lower().endswith(".png"):
                table[row[0]] = (float(row[1]), float(row[2]))
    files = sorted((p for p in (folder / "images").glob("*HC.png")), key=natural_key)
    names = [p.name for p in files if (p.parent / f"{p.stem}_Annotation.png").is_file()]
    missing = [n for n in names if n not in table]
    if missing:
        raise InputError(f"{folder / CSV_NAME}: no pixel size for {', '.join(missing[:3])}")
    if not names:
        raise InputError(f"{folder / 'images'}: no NNN_HC.png images with an NNN_HC_Annotation.png")
    return names, table


def subject(name: str) -> str:
    """``010_2HC.png`` -> ``010``: repeat scans of one fetus stay on one side of the split."""
    return re.match(r"\d+", name).group(0) if re.match(r"\d+", name) else name


def split_names(names: list[str], n_train: int | None, n_test: int) -> tuple[list[str], list[str]]:
    """The first ``n_train`` images train (extended to a whole subject), the next ``n_test`` test
    (likewise); ``n_train=None``: at least the last ``n_test`` test and all before them train."""

    def cut(k: int, step: int = 1) -> int:  # the nearest index from k on (step 1) or back (-1) that starts a subject
        k = min(max(k, 0), len(names))
        while 0 < k < len(names) and subject(names[k]) == subject(names[k - 1]):
            k += step
        return k

    if n_train is None:
        k = cut(len(names) - n_test, -1)
        train, test = names[:k], names[k:]
    else:
        k = cut(n_train)
        train, test = names[:k], names[k : cut(k + n_test)]
    if len(train) < 2 or not test:
        raise InputError(f"too few HC18 images ({len(names)}) for {n_train} training and {n_test} test images")
    return train, test


def split_random(names: list[str], n_test: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """A seeded random split over all ``names``, whole subjects (repeat scans of one fetus) on one side: subjects
    drawn at random go to the test set until it holds at least ``n_test`` images; the rest train. Both keep the
    names' order. (Taking the first images by index would give the youngest fetuses: small, low-contrast heads.)"""
    subjects = sorted({subject(n) for n in names})
    order = np.random.default_rng((seed, 18)).permutation(len(subjects))
    test_subjects, count = set(), 0
    for k in order:
        if count >= n_test:
            break
        test_subjects.add(subjects[k])
        count += sum(subject(n) == subjects[k] for n in names)
    train = [n for n in names if subject(n) not in test_subjects]
    test = [n for n in names if subject(n) in test_subjects]
    if len(train) < 2 or not test:
        raise InputError(f"too few HC18 images ({len(names)}) for {n_test} test images and a training set")
    return train, test


def to_square(im: np.ndarray, size: int, mask: bool = False) -> tuple[np.ndarray, float]:
    """Resize (aspect kept, anti-aliased) so the long side is ``size``, pad centred to size x size.
    Returns (the square, native pixels per working pixel)."""
    from skimage.transform import resize

    h, w = im.shape
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = resize(im.astype(np.float32), (nh, nw), order=1, anti_aliasing=True, preserve_range=True)
    out = np.zeros((size, size), np.float32)
    top, left = (size - nh) // 2, (size - nw) // 2
    out[top : top + nh, left : left + nw] = small
    return (out > 0.5 if mask else out), max(h, w) / size


def fill_annotation(outline: np.ndarray) -> tuple[np.ndarray, bool]:
    """An annotation (H, W) bool -> the filled head and whether an ellipse had to be fitted. HC18's are
    ellipse outlines (some copies store them filled: kept as they are); an outline cut by the image
    edge encloses no hole, and is filled by a fitted ellipse."""
    from scipy import ndimage as ndi

    if ndi.binary_erosion(outline).sum() > 0.5 * outline.sum():  # mostly interior: already filled
        return outline, False
    filled = ndi.binary_fill_holes(outline)
    if filled.sum() >= 2 * outline.sum():
        return filled, False
    inside = fit_ellipse_inside(outline)
    return (filled, False) if inside is None else (inside | outline, True)


def fit_ellipse_inside(points: np.ndarray) -> np.ndarray | None:
    """The inside (H, W) bool of the least-squares conic A x² + B xy + C y² + D x + E y = 1 through the
    True pixels of ``points``; None unless that conic is an ellipse."""
    ys, xs = np.nonzero(points)
    if len(xs) < 5:
        return None
    mx, my, sc = xs.mean(), ys.mean(), max(xs.std(), ys.std(), 1.0)  # normalised coordinates: well conditioned
    x, y = (xs - mx) / sc, (ys - my) / sc
    (a, b, c, d, e), *_ = np.linalg.lstsq(np.stack([x * x, x * y, y * y, x, y], 1), np.ones_like(x), rcond=None)
    if b * b - 4 * a * c >= 0:
        return None
    cx, cy = np.linalg.solve([[2 * a, b], [b, 2 * c]], [-d, -e])  # the centre: the conic's extremum

    def conic(u, v):
        return a * u * u + b * u * v + c * v * v + d * u + e * v - 1

    gy, gx = np.mgrid[: points.shape[0], : points.shape[1]]
    return np.sign(conic((gx - mx) / sc, (gy - my) / sc)) == np.sign(conic(cx, cy))


def load_hc18(folder: Path, names: list[str], table: dict, size: int) -> HC18Set:
    from skimage import io as skio

    images, masks, px, native, hc, fitted = [], [], [], [], [], 0
    for name in names:
        path = folder / "images" / name
        try:
            im = np.asarray(skio.imread(str(path)))
            ann = np.asarray(skio.imread(str(path.parent / f"{path.stem}_Annotation.png")))
        except Exception as exc:
            raise InputError(
                f"{name}: not a readable image ({str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__})"
            ) from None
        if im.ndim == 3:
            im = im[..., :3].mean(axis=-1)
        ann = (ann[..., :3].max(axis=-1) if ann.ndim == 3 else ann) > 0
        if ann.shape != im.shape:
            raise InputError(f"{name}: annotation shape {ann.shape} differs from the image's {im.shape}")
        filled, was_fitted = fill_annotation(ann)
        fitted += was_fitted
        square, factor = to_square(im, size)
        images.append(square)
        masks.append(to_square(filled, size, mask=True)[0])
        native.append(table[name][0])
        px.append(table[name][0] * factor)
        hc.append(table[name][1])
    return HC18Set(names, np.stack(images), np.stack(masks), np.array(px), np.array(native), np.array(hc), fitted)


# --- the shape prior -------------------------------------------------------------------
