"""napari reader, writer and sample-data contributions (thin wrappers over the core IO).

Errors never reach napari as tracebacks: they become one notification and the
reader returns napari's "nothing to add" sentinel, so the viewer stays usable.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import WeaksegError
from .case import Volume, as_label_dtype, read_volume
from .dicom import is_dicom_folder, split_series_path
from .image_folder import is_image_folder
from .nifti import NIFTI_SUFFIXES, is_nifti_path, nifti_stem, read_nifti, write_nifti
from .orientation import header_is_oriented, layer_translate, world_translate
from .shared_frame import to_storage

NOTHING = [(None,)]  # napari's sentinel: the file was handled, there is nothing to add
MASK_STEM = re.compile(r"(mask|seg|label|annotation|truth|OTMultiClass|_gt$)", re.IGNORECASE)


def get_reader(path):
    """npe2 reader command: a reader for NIfTI files and folders of 2D images, else None."""
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    if not paths or not all(is_nifti_path(p) or is_image_folder(p) for p in paths):
        return None
    return read_paths


def read_paths(path) -> list:
    paths = [path] if isinstance(path, (str, Path)) else list(path)
    layers = []
    for p in paths:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                layers.extend(layer_data_for(p))
            for w in caught:
                _notify("warning", str(w.message))
        except WeaksegError as exc:
            _notify("error", str(exc))
        except MemoryError:
            _notify("error", f"{Path(p).name}: not enough memory to open it")
    return layers or NOTHING


def layer_data_for(path) -> list[tuple]:
    """napari layer data for one NIfTI file, DICOM folder (every series that is a volume, each its own
    layer: the user picks one for a study) or image folder (masks open as Labels)."""
    if is_dicom_folder(path) and split_series_path(path)[1] is None:
        return dicom_layer_data(Path(path))
    path = Path(path)
    if is_nifti_path(path) and MASK_STEM.search(nifti_stem(path)):
        data, affine, header = read_nifti(path, labels=True)
        if data.ndim == 3 and data.dtype.kind in "iu":
            meta = {
                "name": nifti_stem(path),
                "scale": _scale(header),
                "translate": world_translate(affine) if header_is_oriented(header) else (0.0, 0.0, 0.0),
                "metadata": nifti_metadata(affine, header, [str(path)]),
            }
            return [(as_label_dtype(data), meta, "labels")]
    return volume_layer_data(read_volume(path), name=nifti_stem(path) if is_nifti_path(path) else path.name)


def dicom_layer_data(folder: Path) -> list[tuple]:
    """Each series of a DICOM folder as its own layer(s); a series that is not a volume is named in a warning."""
    from .dicom import SERIES_MARK, list_series, volume_from_files

    series = list_series(folder)
    layers = []
    for k, s in enumerate(series, 1):
        try:
            source = str(folder.resolve()) + (f"{SERIES_MARK}{k}" if len(series) > 1 else "")
            volume = volume_from_files(s.files, name=s.description or folder.name, source=source)
        except WeaksegError as exc:
            warnings.warn(f"{folder.name}{SERIES_MARK}{k}, {s.label()}: not opened: {exc}", stacklevel=2)
            continue
        name = s.description or folder.name
        layers += volume_layer_data(volume, f"{name} #{k}" if len(series) > 1 else name)
    return layers


def volume_layer_data(volume: Volume, name: str) -> list[tuple]:
    """Layer data for a volume: one grey image layer per channel, only the first visible."""
    meta = {
        "scale": volume.spacing,
        "translate": layer_translate(volume),  # files on different grids overlay where the anatomy is
        "metadata": nifti_metadata(volume.affine, volume.header, volume.sources),
        "colormap": "gray",
    }
    if volume.data.shape[0] == 1:
        return [(volume.data[0], {**meta, "name": name}, "image")]
    names = [f"{name} {c}" if not c.startswith(name) else c for c in volume.channel_names]
    visible = [i == 0 for i in range(len(names))]
    return [(volume.data, {**meta, "name": names, "channel_axis": 0, "visible": visible, "blending": "translucent"}, "image")]


def nifti_metadata(affine, header, sources, study: bool = False) -> dict:
    """What layers carry so that results can be written back on the source grid; ``study``: a layer of a study
    image (its data is the study's, in the image's storage order: never shown in other axes)."""
    info = {"weakseg": {"affine": np.asarray(affine), "header": header, "sources": list(sources)}}
    return study_metadata(info) if study else info


def study_metadata(metadata: dict) -> dict:
    """``metadata`` (a layer's) with its ``weakseg`` part marked as a study image's layer (never re-expressed in
    another file's axes: ``widgets.layer_frames``)."""
    return {**metadata, "weakseg": {**(metadata.get("weakseg") or {}), "study": True}}


def write_single_layer(path: str, data, attributes: dict) -> list[str]:
    """npe2 writer for one image or labels layer to ``.nii``/``.nii.gz``.

    Uses the source header kept in the layer's metadata when there is one (exact
    affine/header round trip); otherwise builds the affine from the layer's scale
    and translation.
    """
    if not is_nifti_path(path):
        path = f"{path}.nii.gz"
    info = (attributes.get("metadata") or {}).get("weakseg", {})
    arr = np.asarray(data)
    if arr.ndim not in (3, 4):
        _notify("error", f"cannot write a {arr.ndim}D layer as NIfTI: expected 3D (or 4D with channels)")
        return []
    header, affine = info.get("header"), info.get("affine")
    if header is not None and tuple(header.get_data_shape()[:3]) != tuple(arr.shape[-3:][::-1]):
        header = None  # the layer no longer matches its source grid
    stored = info.get("stored")
    if header is not None and stored and arr.ndim == 3:  # shown in other layers' axes: back on the file's own grid
        arr, header, affine = to_storage(arr, affine, stored["affine"]), stored["header"], stored["affine"]
    try:
        write_nifti(path, arr, affine=affine if header is not None else _affine(attributes), header=header)
    except WeaksegError as exc:
        _notify("error", str(exc))
        return []
    return [str(path)]


def phantom_sample() -> list[tuple]:
    """npe2 sample data: a two-channel phantom and its ground-truth lesion mask."""
    from ..data.phantom import make_phantom

    case = make_phantom(channels=2, seed=0)
    layers = volume_layer_data(case.volume, "phantom")
    meta = {"name": "phantom truth", "scale": case.volume.spacing, "metadata": nifti_metadata(case.volume.affine, None, []), "opacity": 0.5}
    return layers + [(case.mask, meta, "labels")]


def _scale(header) -> tuple[float, float, float]:
    from .nifti import spacing_from_header

    return spacing_from_header(header)


def _affine(attributes: dict) -> np.ndarray:
    scale = list(attributes.get("scale") or [1, 1, 1])[-3:]
    translate = list(attributes.get("translate") or [0, 0, 0])[-3:]
    aff = np.eye(4)
    aff[:3, :3] = np.diag(scale[::-1])
    aff[:3, 3] = translate[::-1]
    return aff


def _notify(kind: str, message: str) -> None:
    from napari.utils.notifications import show_error, show_warning

    (show_error if kind == "error" else show_warning)(message)


NIFTI_PATTERNS = tuple(f"*{suffix}" for suffix in NIFTI_SUFFIXES)  # ("*.nii", "*.nii.gz")


def prefer_our_reader(settings=None) -> list[str]:
    """Make napari-weakseg napari's reader for NIfTI files, unless the user chose one: otherwise napari's reader
    dialog pre-selects "napari builtins", which cannot read them (``OSError: Could not find a backend``). Saved in
    napari's preferences (Plugins > File extension readers, where it can be changed). Returns the patterns set."""
    from napari.settings import get_settings

    settings = settings or get_settings()
    current = dict(settings.plugins.extension2reader)
    added = [p for p in NIFTI_PATTERNS if p not in current]
    if added:
        settings.plugins.extension2reader = {**current, **dict.fromkeys(added, "napari-weakseg")}
    return added
