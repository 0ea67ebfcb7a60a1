"""Writing model outputs on the input's grid: NIfTI with the source affine/header, or PNG/TIFF per slice."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .case import Volume
from .nifti import write_nifti


def write_volume_outputs(out_dir: Path, name: str, volume: Volume, outputs: dict[str, np.ndarray], threshold: float) -> list[Path]:
    """``<name>_seg.nii.gz`` (labels), ``_prob``, ``_healthy``, ``_residual`` (and ``_lesion_sample``).

    outputs: prob (Z, Y, X); healthy/residual (C, Z, Y, X). Single-channel images give 3D files.
    """
    written = []
    header, affine = volume.header, volume.affine
    seg = (outputs["prob"] >= threshold).astype(np.uint8)
    written.append(write_nifti(out_dir / f"{name}_seg.nii.gz", seg, affine=affine, header=header))
    written.append(write_nifti(out_dir / f"{name}_prob.nii.gz", outputs["prob"].astype(np.float32), affine=affine, header=header))
    for key in ("healthy", "residual", "lesion_sample"):
        if key in outputs:
            arr = outputs[key].astype(np.float32)
            written.append(
                write_nifti(out_dir / f"{name}_{key}.nii.gz", arr[0] if arr.shape[0] == 1 else arr, affine=affine, header=header)
            )
    if "class_prob" in outputs:  # a model trained per lesion class
        grid = {"affine": affine, "header": header}
        written.append(write_nifti(out_dir / f"{name}_classes.nii.gz", class_labels(outputs, threshold), **grid))
        written.append(write_nifti(out_dir / f"{name}_class_prob.nii.gz", outputs["class_prob"].astype(np.float32), **grid))
    return written


def class_labels(outputs: dict[str, np.ndarray], threshold: float) -> np.ndarray:
    """(Z, Y, X) uint8/uint16 lesion class labels of a per-class model: the likeliest class k (label k) where the
    lesion probability reaches ``threshold``, 0 elsewhere. outputs: prob (Z, Y, X), class_prob (K, Z, Y, X)."""
    k = outputs["class_prob"].shape[0]
    labels = (np.argmax(outputs["class_prob"], axis=0) + 1).astype(np.uint8 if k < 255 else np.uint16)
    labels[outputs["prob"] < threshold] = 0
    return labels


def dicom_series_of(volume: Volume) -> str | None:
    """The DICOM series (``FOLDER`` or ``FOLDER#N``) a volume was read from, or None."""
    from .dicom import is_dicom_folder

    src = volume.sources[0] if len(volume.sources) == 1 else None
    return src if src is not None and is_dicom_folder(src) else None


def save_segmentation(path: str | Path, seg: np.ndarray, volume: Volume, names: dict[int, str] | None = None) -> Path:
    """A segmentation (Z, Y, X) labels on ``volume``'s grid: ``.dcm`` a DICOM SEG referring to the DICOM series
    the volume came from (``names``: label -> segment name), anything else NIfTI with the volume's affine and header."""
    path = Path(path)
    if path.suffix.lower() == ".dcm":
        from ..errors import InputError
        from .dicom_seg import write_dicom_seg

        series = dicom_series_of(volume)
        if series is None:
            raise InputError("a DICOM SEG refers to a DICOM series, and this image was not read from one; save it as NIfTI")
        return write_dicom_seg(path, seg, series, names)
    if not str(path).lower().endswith((".nii", ".nii.gz")):
        path = path.with_name(path.name + ".nii.gz")
    seg = np.asarray(seg)
    return write_nifti(path, seg.astype(np.uint8 if seg.max(initial=0) < 256 else np.uint16), affine=volume.affine, header=volume.header)


def write_folder_outputs(out_dir: Path, name: str, info: dict, outputs: dict[str, np.ndarray], threshold: float) -> list[Path]:
    """One file per input image, cropped back to its own size: ``<name>_seg/<stem>.png`` (0/255),
    ``<name>_prob/<stem>.png`` (8-bit), ``<name>_healthy|residual/<stem>.tif`` (float32)."""
    import tifffile
    from skimage import io as skio

    written = []
    for i, (src, (h, w)) in enumerate(zip(info["files"], info["shapes"], strict=True)):
        stem = Path(src).stem
        prob = outputs["prob"][i, :h, :w]
        for key, arr in (("seg", ((prob >= threshold) * 255).astype(np.uint8)), ("prob", np.round(prob * 255).astype(np.uint8))):
            path = out_dir / f"{name}_{key}" / f"{stem}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            skio.imsave(str(path), arr, check_contrast=False)
            written.append(path)
        for key in ("healthy", "residual", "lesion_sample"):
            if key in outputs:
                path = out_dir / f"{name}_{key}" / f"{stem}.tif"
                path.parent.mkdir(parents=True, exist_ok=True)
                tifffile.imwrite(path, outputs[key][0, i, :h, :w].astype(np.float32))
                written.append(path)
    return written
