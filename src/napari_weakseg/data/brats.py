"""BraTS-style cases as benchmark data: FLAIR + T1c as channels, whole tumour inside the brain mask,
axial slices at a reduced in-plane size, and study folders with masks kept on a fraction of slices.

A case folder holds ``Flair_subtrMeanDivStd.nii.gz``, ``T1c_subtrMeanDivStd.nii.gz``,
``OTMultiClass.nii.gz`` (labels 0..4; whole tumour = label > 0) and ``brainmask.nii.gz``, all on one
grid (i, j, k) = (X, Y, Z), axial slices along k (napari axis 0 after reading).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import InputError

CHANNELS = ("Flair_subtrMeanDivStd", "T1c_subtrMeanDivStd")
CHANNEL_NAMES = ("FLAIR", "T1c")
LABELS = "OTMultiClass"
BRAIN = "brainmask"
FILES = (*CHANNELS, LABELS, BRAIN)


@dataclass
class BratsCase:
    """One case at the working resolution, brain slices only (the ``Z`` kept axial slices).

    images:  (C, Z, S, S) float32, the stored (z-scored) intensities, area-averaged.
    tumour:  (Z, S, S) uint8, 1 = whole tumour inside the brain mask (area fraction >= 0.5).
    slices:  (Z,) int, the source axial slice of each row.
    tags:    (Z,) uint8 Tag: presence (tumour pixels at the working size), absence (no tumour voxel
             inside the brain at full size), unknown (a few voxels that vanish at the working size).
    brain:   (Z, S, S) bool, the brain mask at the working size (area fraction >= 0.5).
    tumour_full: (Z, H, W) bool, the whole tumour of the kept slices at the source resolution (for scoring).
    """

    name: str
    images: np.ndarray
    tumour: np.ndarray
    slices: np.ndarray
    tags: np.ndarray
    native_shape: tuple[int, int, int]  # (Z, Y, X) of the source
    sources: list[str]
    brain: np.ndarray | None = None
    tumour_full: np.ndarray | None = None
    _half_tags: dict = field(default_factory=dict, repr=False)  # (roi_min, lesion_min) -> half_tags()

    def split(self):
        """The hemispheres: a :class:`HalfSplit` across X (the left-right axis of these volumes, whose affine is
        diagonal) at the middle of the brain's extent at the working size."""
        from ..study.halves import HalfSplit, middle_of

        return HalfSplit(2, middle_of(self.brain, 2, self.brain.shape))

    def half_tags(self, roi_min: float = 0.25, lesion_min: float = 0.01) -> np.ndarray:
        """(Z, 2) Tag per hemisphere at the working size (Vorontsov et al. Sec. IV-D: brain >= 25 % of the half,
        presence from 1 % of its brain; ``study.build.half_tags_from_masks``)."""
        from ..study.build import half_tags_from_masks

        key = (roi_min, lesion_min)  # asked for by every run of the suite: computed once
        if key not in self._half_tags:
            self._half_tags[key] = half_tags_from_masks(self.tumour, self.brain, 0, self.split(), roi_min, lesion_min)
        return self._half_tags[key].copy()

    @property
    def presence(self) -> np.ndarray:
        from ..study.model import Tag

        return self.tags == Tag.PRESENCE


def find_brats(data: Path) -> Path:
    """The folder of case folders: ``data/brats2015`` or ``data`` itself. A case folder lacking one of
    the four files, or no case at all, is an InputError."""
    data = Path(data)
    for folder in (data / "brats2015", data):
        if folder.is_dir() and any(_looks_like_case(p) for p in folder.iterdir() if p.is_dir()):
            return folder
    raise InputError(f"{data}: no BraTS data (expected DATA/brats2015/CASE/{{{','.join(f + '.nii.gz' for f in FILES)}}})")


def _looks_like_case(folder: Path) -> bool:
    return any((folder / f"{name}.nii.gz").is_file() for name in FILES)


def list_cases(folder: Path, minimum: int = 3) -> list[Path]:
    """Case folders (sorted by name); every one must hold all four files; fewer than ``minimum`` (the suite's
    three: train, validate, test) is an InputError."""
    cases = sorted(p for p in Path(folder).iterdir() if p.is_dir() and _looks_like_case(p))
    for case in cases:
        missing = [f"{n}.nii.gz" for n in FILES if not (case / f"{n}.nii.gz").is_file()]
        if missing:
            raise InputError(f"{case}: missing {', '.join(missing)}")
    if len(cases) < minimum:
        need = "at least 3 (one to train, one to validate, one to test)" if minimum == 3 else f"at least {minimum}"
        raise InputError(f"{folder}: {len(cases)} BraTS case(s); the suite needs {need}")
    return cases


def _area_resize(x: np.ndarray, size: int) -> np.ndarray:
    """(..., H, W) float -> (..., size, size) by area averaging (exact block means when size divides H)."""
    import torch
    from torch.nn import functional as F

    if x.shape[-2:] == (size, size):
        return x.astype(np.float32)
    lead = x.shape[:-2]
    t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).reshape(-1, 1, *x.shape[-2:])
    return F.interpolate(t, size=(size, size), mode="area").reshape(*lead, size, size).numpy()


def normalise_brain(x: np.ndarray, brain: np.ndarray) -> np.ndarray:
    """Vorontsov et al. (journal), Sec. IV-D: "mean-centering the brain regions and dividing them by five
    times their standard deviations, considering only brain tissue"; 0 outside the brain. x, brain (Z, Y, X)."""
    v = x[brain]
    std = float(v.std()) if v.size else 0.0
    if not v.size or std == 0:
        raise InputError("the brain mask is empty or the image is constant inside it; cannot normalise")
    return np.where(brain, (x - float(v.mean())) / (5 * std), 0).astype(np.float32)


def load_brats_case(case: Path, size: int, min_brain: float = 0.01, brain_normalisation: bool = False) -> BratsCase:
    """Read one case, keep the axial slices whose brain mask covers at least ``min_brain`` of the
    slice, and reduce them in-plane to ``size`` x ``size``. ``brain_normalisation``: each channel as the
    paper prepares it (``normalise_brain``) instead of the stored intensities."""
    from ..io.nifti import read_nifti
    from ..study.model import Tag

    channels = []
    for name in CHANNELS:
        data, _, _ = read_nifti(case / f"{name}.nii.gz")
        if data.ndim != 3:
            raise InputError(f"{case.name}/{name}.nii.gz: expected a 3D volume, got shape {data.shape}")
        channels.append(data)
    labels, _, _ = read_nifti(case / f"{LABELS}.nii.gz", labels=True)
    brain, _, _ = read_nifti(case / f"{BRAIN}.nii.gz", labels=True)
    shapes = {c.shape for c in channels} | {labels.shape, brain.shape}
    if len(shapes) != 1:
        raise InputError(f"{case.name}: the four files differ in shape ({', '.join(str(s) for s in sorted(shapes))})")
    brain = brain > 0
    if brain_normalisation:
        channels = [normalise_brain(c, brain) for c in channels]
    tumour = (labels > 0) & brain  # (Z, Y, X)
    area = brain.sum(axis=(1, 2))
    keep = np.flatnonzero(area >= min_brain * brain.shape[1] * brain.shape[2])
    if not len(keep):
        raise InputError(f"{case.name}: no axial slice with brain (brainmask.nii.gz is empty)")
    images = _area_resize(np.stack(channels)[:, keep], size)  # (C, Z, S, S)
    small = (_area_resize(tumour[keep].astype(np.float32), size) >= 0.5).astype(np.uint8)  # (Z, S, S)
    any_full = tumour[keep].any(axis=(1, 2))
    tags = np.where(small.any(axis=(1, 2)), Tag.PRESENCE, np.where(any_full, Tag.UNKNOWN, Tag.ABSENCE)).astype(np.uint8)
    small_brain = _area_resize(brain[keep].astype(np.float32), size) >= 0.5
    return BratsCase(
        case.name, images, small, keep, tags, tuple(brain.shape), [str(case / f"{n}.nii.gz") for n in CHANNELS], small_brain, tumour[keep]
    )


def folds(n: int, fold: int) -> tuple[list[int], int, int]:
    """Leave-one-volume-out with a validation volume: fold ``f`` tests on case ``f``, validates on case
    ``f + 1`` (mod n) and trains on the others. Returns (train, validation, test)."""
    if n < 3:
        raise InputError(f"{n} case(s): a fold needs one to test, one to validate and at least one to train")
    test, val = fold % n, (fold + 1) % n
    return [i for i in range(n) if i not in (test, val)], val, test


def build_brats_study(
    folder: Path, cases: list[BratsCase], kept: list[np.ndarray], halves: bool = False, roi_min: float = 0.25, lesion_min: float = 0.01
):
    """Write a study folder: one image per case, (C, Z, S, S); ``kept[i]`` (Z, S, S) bool says where case i's
    tumour mask is kept (erased elsewhere; every tag stays). ``halves``: each image split into its hemispheres
    (``BratsCase.split``), one tag per half-slice (``BratsCase.half_tags``). Returns the Study."""
    from ..io.case import Volume
    from ..study.folder import check_new_folder, save_study
    from ..study.model import Study

    check_new_folder(folder)
    study = Study()
    for case, keep in zip(cases, kept, strict=True):
        f = case.native_shape[1] / case.images.shape[-1]
        affine = np.diag([f, f, 1.0, 1.0])  # NIfTI (i, j, k); the kept slices are stacked without gaps
        volume = Volume(case.images, affine, None, (1.0, f, f), list(CHANNEL_NAMES), case.sources)
        im = study.add_image(volume, name=case.name, mask=(case.tumour * keep).astype(np.uint8), axis=0)
        if halves:
            study.set_split(im, case.split())
            im.half_tags[:] = case.half_tags(roi_min, lesion_min)
            im.sync_tags()
        else:
            im.tags[:] = case.tags
        im.mask_changed()
    save_study(study, folder)
    return study
