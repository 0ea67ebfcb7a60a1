"""DICOM series in: a folder of single-frame images (CT, MR, ...) read as a volume with its affine.

Library: pydicom (pure Python, the reference DICOM parser in Python, maintained by the pydicom project), with
the geometry computed here from the standard's own attributes, so every step is visible and tested:

- slices are ordered by their position along the slice normal (ImagePositionPatient projected onto
  row x column of ImageOrientationPatient), never by InstanceNumber or file name;
- the slice step is taken from the positions (first to last over n - 1), not from SliceThickness, so a
  tilted acquisition (gantry tilt: positions not along the normal) keeps its true, sheared geometry;
- unevenly spaced slices (a missing file, a localiser in the folder), several images at one position
  (echoes, time points) or slices of different orientations (a radial series) are refused with the reason.

The voxels come out in napari order (Z, Y, X) = (slice, row, column), as for NIfTI (i = column, j = row,
k = slice); the affine is NIfTI's RAS+ (DICOM's LPS patient coordinates with x and y negated). A NIfTI header
is built from it, so a study of a DICOM series saves and writes masks back on the series' grid.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

MAX_FILES = 20000  # files looked at in one folder (a whole PACS export is not one case)
SERIES_MARK = "#"  # FOLDER#N or FOLDER#UID picks one series of a folder that holds several


@dataclass
class Series:
    uid: str
    description: str
    modality: str
    files: list[Path] = field(default_factory=list)

    def label(self) -> str:
        return f"{self.description or 'no description'} ({self.modality}, {len(self.files)} image(s))"


def is_dicom_file(path: str | os.PathLike) -> bool:
    """A file with DICOM's 128-byte preamble and "DICM" marker (Part 10)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:] == b"DICM"


def _dicom_files(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs.sort()  # a stable order, so that FOLDER#N names the same series every time
        for name in sorted(names):
            p = Path(root) / name
            if name != "DICOMDIR" and is_dicom_file(p):
                files.append(p)
                if len(files) > MAX_FILES:
                    raise InputError(f"{folder.name}: more than {MAX_FILES} DICOM files; open one series' folder")
    return files


def split_series_path(path: str | os.PathLike) -> tuple[Path, str | None]:
    """``FOLDER#N`` / ``FOLDER#UID`` -> (FOLDER, "N" or "UID"); a path that exists as given is never split."""
    text = str(path)
    if Path(text).exists() or SERIES_MARK not in text:
        return Path(text), None
    folder, _, which = text.rpartition(SERIES_MARK)
    return Path(folder), which or None


def is_dicom_folder(path: str | os.PathLike) -> bool:
    """A folder (or ``FOLDER#N``) holding a DICOM file among its first files (subfolders included)."""
    folder, _ = split_series_path(path)
    if not folder.is_dir():
        return False
    for k, (root, _, names) in enumerate(os.walk(folder)):
        if any(is_dicom_file(Path(root) / n) for n in sorted(names)[:20]) or k > 50:
            return k <= 50
    return False


def list_series(folder: str | os.PathLike) -> list[Series]:
    """The series of a folder (headers only), in the order of their first file (names sorted, subfolders
    included)."""
    import pydicom

    folder = Path(folder)
    by_uid: dict[str, Series] = {}
    for path in _dicom_files(folder):
        try:
            ds = pydicom.dcmread(path, stop_before_pixels=True)
        except Exception as exc:  # pydicom raises many types for damaged files
            raise InputError(f"{path.name}: not a readable DICOM file ({str(exc).splitlines()[0][:150]})") from None
        uid = str(ds.get("SeriesInstanceUID", "") or f"no-uid-{path.parent}")
        s = by_uid.setdefault(uid, Series(uid, str(ds.get("SeriesDescription", "") or ""), str(ds.get("Modality", "") or "?")))
        s.files.append(path)
    if not by_uid:
        raise InputError(f"{folder.name}: no DICOM file in it")
    return list(by_uid.values())


def choose_series(folder: Path, series: list[Series], which: str | None) -> Series:
    """The series ``which`` names (1-based number as listed, or its UID); with one series, that one."""
    if which is None:
        if len(series) == 1:
            return series[0]
        listing = "; ".join(f"{k}: {s.label()}" for k, s in enumerate(series, 1))
        raise InputError(f"{folder.name} holds {len(series)} series ({listing}); choose one as {folder.name}{SERIES_MARK}N")
    if which.isdigit() and 1 <= int(which) <= len(series):
        return series[int(which) - 1]
    for s in series:
        if s.uid == which:
            return s
    raise InputError(f"{folder.name}: no series {which!r}; it holds {len(series)} (numbers 1..{len(series)} or their UIDs)")


def read_dicom_series(path: str | os.PathLike):
    """One series of a DICOM folder (``FOLDER`` or ``FOLDER#N``) as a :class:`~napari_weakseg.io.case.Volume`:
    data (1, Z, Y, X) float32 (slices, rows, columns; modality units after RescaleSlope/Intercept), the RAS
    affine, a NIfTI header built from it, the voxel size from the positions."""
    folder, which = split_series_path(path)
    series = choose_series(folder, list_series(folder), which)
    source = str(folder.resolve()) + (f"{SERIES_MARK}{which}" if which else "")  # names the series (DICOM SEG refers to it)
    return volume_from_files(series.files, name=series.description or folder.name, source=source)


def ordered_images(files: list[Path], what: str) -> tuple[list[Path], list, np.ndarray, np.ndarray]:
    """The images of one series checked to be one volume and ordered along their normal: (files, their headers
    (pydicom datasets without pixels), positions (n, 3) LPS mm, the normal (3,)). InputError with the reason
    for a series that is not one volume."""
    import pydicom

    heads = [pydicom.dcmread(p, stop_before_pixels=True) for p in files]
    for ds in heads:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            raise InputError(f"{what}: a multi-frame (enhanced) DICOM image; only single-frame series are read")
        for key in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "Rows", "Columns"):
            if ds.get(key) is None:
                raise InputError(f"{what}: an image without {key} ({ds.get('Modality', '?')}); not a volume (a radiograph?)")
    orient = np.array([[float(v) for v in ds.ImageOrientationPatient] for ds in heads])
    if np.abs(orient - orient[0]).max() > 1e-4:
        raise InputError(f"{what}: its images have different orientations (a localiser or a radial series); not one volume")
    shapes = {(int(ds.Rows), int(ds.Columns)) for ds in heads}
    spacings = {tuple(round(float(v), 6) for v in ds.PixelSpacing) for ds in heads}
    if len(shapes) > 1 or len(spacings) > 1:
        raise InputError(f"{what}: its images differ in size or pixel spacing ({sorted(shapes)}, {sorted(spacings)})")
    normal = np.cross(orient[0, :3], orient[0, 3:])
    pos = np.array([[float(v) for v in ds.ImagePositionPatient] for ds in heads])
    order = np.argsort(pos @ normal, kind="stable")
    pos, heads, files = pos[order], [heads[k] for k in order], [files[k] for k in order]
    if len(heads) > 1:
        steps = np.diff(pos @ normal)
        if steps.min() < 1e-3:
            raise InputError(
                f"{what}: {int((steps < 1e-3).sum()) + 1} images at the same position (several echoes or time points "
                "in one series); not one volume"
            )
        median = float(np.median(steps))
        if np.abs(steps - median).max() > 0.01 * median + 1e-3:
            raise InputError(
                f"{what}: unevenly spaced slices (steps {steps.min():.3g} to {steps.max():.3g} mm along the normal): "
                "a missing file or an image from another stack"
            )
    return files, heads, pos, normal


def series_images(path: str | os.PathLike) -> tuple[list[Path], list]:
    """The ordered (files, headers) of the series ``path`` names (``FOLDER`` or ``FOLDER#N``)."""
    folder, which = split_series_path(path)
    series = choose_series(folder, list_series(folder), which)
    files, heads, _, _ = ordered_images(series.files, folder.name)
    return files, heads


def volume_from_files(files: list[Path], name: str, source: str):
    import nibabel as nib
    import pydicom

    from .nifti import check_fits_in_memory, to_nifti_order
    from .volume import Volume

    what = Path(split_series_path(source)[0]).name
    files, heads, pos, normal = ordered_images(files, what)
    n = len(heads)
    if n > 1:
        step = (pos[-1] - pos[0]) / (n - 1)  # keeps a gantry tilt (not along the normal)
    else:
        step = normal * float(heads[0].get("SpacingBetweenSlices") or heads[0].get("SliceThickness") or 1.0)
    orient = np.array([float(v) for v in heads[0].ImageOrientationPatient])
    row_dir, col_dir = orient[:3], orient[3:]  # LPS: along a row (columns grow), along a column (rows grow)
    dr, dc = (float(v) for v in heads[0].PixelSpacing)  # row spacing, column spacing (mm)
    rows, cols = int(heads[0].Rows), int(heads[0].Columns)
    check_fits_in_memory(what, (cols, rows, n), 4)
    lps = np.eye(4)
    lps[:3, 0], lps[:3, 1], lps[:3, 2], lps[:3, 3] = row_dir * dc, col_dir * dr, step, pos[0]
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    data = np.empty((n, rows, cols), np.float32)  # napari order (k, j, i)
    for k, path in enumerate(files):
        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
        except Exception as exc:
            raise InputError(f"{path.name}: its pixel data cannot be decoded ({str(exc).splitlines()[0][:200]})") from None
        slope, intercept = float(ds.get("RescaleSlope", 1) or 1), float(ds.get("RescaleIntercept", 0) or 0)
        data[k] = pixels.astype(np.float32) * slope + intercept
    img = nib.Nifti1Image(to_nifti_order(data), affine)
    sheared = abs(float(np.dot(step / np.linalg.norm(step), normal))) < 1 - 1e-6
    img.set_sform(affine, 1)  # scanner coordinates
    img.set_qform(None if sheared else affine, 0 if sheared else 1)  # a qform cannot hold a tilt
    img.header.set_xyzt_units("mm")
    spacing = (float(np.linalg.norm(step)), dr, dc)
    return Volume(data[None], affine, img.header, spacing, [name], [source])
