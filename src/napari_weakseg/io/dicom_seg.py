"""DICOM SEG out: a segmentation of a DICOM series as a DICOM Segmentation object that refers to the series'
images, so that a PACS or a DICOM viewer (OHIF, 3D Slicer) shows it over them.

Written with highdicom (the DICOM SEG implementation of the Imaging Data Commons project, on pydicom): one
segment per label (1 = lesion unless the study names its classes), one frame per source image that holds a
label (empty frames left out, as highdicom does by default), each frame referring to its source image and
taking its position and orientation from it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from .. import __version__
from ..atomic import write_bytes_atomic
from ..errors import InputError

SEG_SERIES_NUMBER = 901  # a series number unlikely to clash with the scanner's
# the patient and study attributes a SEG copies from its source (type 2: present, possibly empty); anonymised
# exports often drop them, so they are added empty to the in-memory copies, never to the user's files
TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "StudyID",
    "AccessionNumber",
    "ReferringPhysicianName",
)


def write_dicom_seg(path: str | os.PathLike, mask: np.ndarray, series: str | os.PathLike, names: dict[int, str] | None = None) -> Path:
    """Write ``mask`` (Z, Y, X) integer labels, on the grid of the DICOM series ``series`` (``FOLDER`` or
    ``FOLDER#N``; (Z, Y, X) = (its images ordered by position, rows, columns)), as a DICOM SEG file at
    ``path``, atomically. ``names``: label -> segment name (default "lesion" for 1, "label K" otherwise)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from .dicom import series_images

    files, _ = series_images(series)
    sources = [pydicom.dcmread(p) for p in files]
    for ds in sources:
        for key in TYPE2:
            if key not in ds:
                setattr(ds, key, "")
    mask = np.asarray(mask)
    rows, cols = int(sources[0].Rows), int(sources[0].Columns)
    if mask.shape != (len(sources), rows, cols):
        raise InputError(f"the segmentation's shape {mask.shape} is not the series' grid {(len(sources), rows, cols)}")
    labels = [int(v) for v in np.unique(mask) if v > 0]
    if not labels:
        raise InputError("the segmentation is empty: a DICOM SEG needs at least one labelled pixel")
    names = names or {}
    algorithm = hd.AlgorithmIdentificationSequence(name="napari-weakseg", version=__version__, family=codes.cid7162.ArtificialIntelligence)
    segments = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=names.get(value, "lesion" if value == 1 else f"label {value}"),
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        )
        for k, value in enumerate(labels, 1)
    ]
    planes = np.stack([mask == value for value in labels], axis=-1).astype(np.uint8)  # (frames, rows, cols, segments)
    seg = hd.seg.Segmentation(
        source_images=sources,
        pixel_array=planes,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments,
        series_instance_uid=hd.UID(),
        series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="napari-weakseg",
        manufacturer_model_name="napari-weakseg",
        software_versions=__version__,
        device_serial_number="0",
        series_description="napari-weakseg segmentation",
    )
    buffer = io.BytesIO()
    seg.save_as(buffer)
    return write_bytes_atomic(path, buffer.getvalue())


def read_dicom_seg(path: str | os.PathLike, series: str | os.PathLike) -> np.ndarray:
    """The labels (Z, Y, X) of a DICOM SEG file on the grid of ``series`` (its images ordered by position):
    segment k's pixels get its number k (the tests' and users' check that a SEG reads back)."""
    import highdicom as hd

    from .dicom import series_images

    seg = hd.seg.segread(str(path))
    _, heads = series_images(series)
    uids = [str(ds.SOPInstanceUID) for ds in heads]
    known = {str(uid) for _, _, uid in seg.get_source_image_uids()}
    present = [u for u in uids if u in known]
    out = np.zeros((len(uids), int(heads[0].Rows), int(heads[0].Columns)), np.uint16)
    if present:
        frames = seg.get_pixels_by_source_instance(present, combine_segments=True, skip_overlap_checks=True)
        for uid, frame in zip(present, frames, strict=True):
            out[uids.index(uid)] = frame
    return out
