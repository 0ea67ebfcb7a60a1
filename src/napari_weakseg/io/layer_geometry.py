"""The geometry of image layers opened by other napari readers, as a NIfTI affine and header, so that a study
made from them (and every mask written back) lies where the anatomy is, in ITK-SNAP or 3D Slicer too.

Each reader keeps it in its own way (read from their code; the tests build layers the same way):

- ITK conventions (``itk-napari-conversion`` for napari-itk-io, MedVol for MIC-DKFZ's napari-nifti):
  ``origin``, ``spacing`` and ``direction`` in NumPy axis order (the ITK index reversed, as the layer's data),
  in ITK's LPS physical space; in the layer's metadata, or under ``metadata["itk_metadata"]``.
- napari-nibabel: ``metadata["affine"]``, the NIfTI (RAS) affine of the layer's data (which it reoriented to
  RAS; its (k, j, i) array order is ours), and the file's original header, which no longer matches that data.

This plugin's own layers carry ``metadata["weakseg"]`` (the file's affine and header: exact round trip).
"""

from __future__ import annotations

import numpy as np

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


def _itk_style(metadata: dict) -> dict | None:
    for md in (metadata, metadata.get("itk_metadata")):
        if isinstance(md, dict) and all(k in md for k in ("origin", "spacing", "direction")):
            return md
    return None


def affine_from_metadata(metadata: dict | None) -> np.ndarray | None:
    """The NIfTI (i, j, k) -> RAS mm affine of a 3-D layer opened by another reader, from its metadata; None
    when the metadata says nothing about geometry."""
    if not isinstance(metadata, dict):
        return None
    itk = _itk_style(metadata)
    if itk is not None:
        try:
            origin = np.asarray(itk["origin"], float).reshape(-1)[-3:]
            spacing = np.asarray(itk["spacing"], float).reshape(-1)[-3:]
            direction = np.asarray(itk["direction"], float)[-3:, -3:]
        except (TypeError, ValueError, IndexError):
            return None
        if origin.shape != (3,) or spacing.shape != (3,) or direction.shape != (3, 3):
            return None
        lps = np.eye(4)  # back to the ITK index order (i, j, k) = NIfTI's
        lps[:3, :3] = direction[::-1, ::-1] @ np.diag(spacing[::-1])
        lps[:3, 3] = origin[::-1]
        return LPS_TO_RAS @ lps
    affine = metadata.get("affine")
    try:
        affine = np.asarray(affine, float)
    except (TypeError, ValueError):
        return None
    if affine.shape == (4, 4) and np.isfinite(affine).all() and abs(np.linalg.det(affine[:3, :3])) > 1e-12:
        return affine
    return None


def header_for(affine: np.ndarray, shape_zyx: tuple[int, int, int], like=None):
    """A NIfTI-1 header for data of napari shape (Z, Y, X) with ``affine`` as its scanner transform (sform; the
    qform too unless the affine shears, which a qform cannot hold). ``like``: a NIfTI-1 header whose other fields
    (data type, intensity scaling, units, description, the forms' codes) the new one keeps."""
    import nibabel as nib

    like = like if isinstance(like, nib.Nifti1Header) else None
    img = nib.Nifti1Image(np.zeros(tuple(shape_zyx)[::-1], np.uint8), affine, header=like.copy() if like else None)
    rot = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    sform_code = int(like["sform_code"]) if like is not None and int(like["sform_code"]) else 1
    qform_code = int(like["qform_code"]) if like is not None and int(like["qform_code"]) else 1
    img.set_sform(affine, sform_code)
    rigid = np.allclose(rot.T @ rot, np.eye(3), atol=1e-6)
    img.set_qform(affine if rigid else None, qform_code if rigid else 0)
    if like is None:
        img.header.set_xyzt_units("mm")
    return img.header
