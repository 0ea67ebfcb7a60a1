"""A tiny synthetic folder in the BraTS layout (never the real data), for the BraTS and effort suites' tests:
three volumes of 8 axial slices, 32x32, a brain disc with a bright tumour blob on some slices, in the left half
(x < 16) of the image."""

from __future__ import annotations

import nibabel as nib
import numpy as np

TUMOUR_SLICES = {0: [2, 3, 4, 5], 1: [1, 2, 3], 2: [3, 4, 5, 6]}  # per volume; the others are tumour-free


def _write_case(folder, index, rng):
    """(X, Y, Z) = (32, 32, 8) NIfTI files: brain disc on slices 1..7 (slice 0 has no brain), tumour
    blob of labels 1..4 on TUMOUR_SLICES[index] (one voxel outside the brain, to be ignored)."""
    folder.mkdir(parents=True)
    z, y, x = np.mgrid[:8, :32, :32]
    brain = ((y - 16) ** 2 + (x - 16) ** 2 < 13**2) & (z >= 1)
    tumour = np.zeros((8, 32, 32), np.uint8)
    for s in TUMOUR_SLICES[index]:
        blob = (y[s] - 12 - index) ** 2 + (x[s] - 10) ** 2 < 5**2  # left of the midline (x = 16)
        tumour[s][blob] = 1 + (x[s][blob] % 4)
    tumour[2, 0, 0] = 2  # outside the brain: not whole tumour
    for name, base in (("Flair_subtrMeanDivStd", 0.0), ("T1c_subtrMeanDivStd", 0.5)):
        img = (rng.normal(0, 0.3, brain.shape) + brain * 1.0 + (tumour > 0) * 2.0 + base) * brain
        _save(folder / f"{name}.nii.gz", img.astype(np.float32))
    _save(folder / "OTMultiClass.nii.gz", tumour)
    _save(folder / "brainmask.nii.gz", brain.astype(np.float32))


def _save(path, arr):
    nib.save(nib.Nifti1Image(np.ascontiguousarray(arr.transpose(2, 1, 0)), np.eye(4)), str(path))  # napari (Z, Y, X) -> (i, j, k)


def write_brats_folder(data):
    """DATA/brats2015/case{0,1,2}; returns DATA."""
    rng = np.random.default_rng(0)
    for i in range(3):
        _write_case(data / "brats2015" / f"case{i}", i, rng)
    return data
