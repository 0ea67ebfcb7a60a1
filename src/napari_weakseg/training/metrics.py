"""Segmentation metrics (numpy/scipy): Dice, pooled and mean Dice, ASSD, and file evaluation.

Masks are binarised as ``> 0``. Conventions for empty masks:

- :func:`dice` is 1.0 when prediction and truth are both empty (nothing to find,
  nothing found), 0.0 when exactly one is empty.
- :func:`assd` is 0.0 when both are empty and ``inf`` when exactly one is empty
  (a surface distance to nothing is undefined; ``inf`` keeps the failure visible
  instead of silently dropping it from a mean). ``weakseg evaluate --json``
  writes such values as ``null``.

ASSD, the average symmetric surface distance, pools the distances of all surface
voxels of both masks: ``(sum d(p, T) + sum d(t, P)) / (|P_s| + |T_s|)`` where
``P_s``/``T_s`` are the surface voxels (mask voxels with a background neighbour
along an axis, or on the array's edge) and ``d`` is the Euclidean distance to the
nearest surface voxel of the other mask -- the definition of Heimann et al. (2009)
and of the LiTS evaluation. (medpy's ``assd`` averages the two directed means
instead; the two agree when both surfaces have as many voxels.) Surfaces are
computed in as many dimensions as the arrays have: 3D volumes get 3D surfaces.
Distances are in voxels, or in the units of ``spacing`` (mm for NIfTI).
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..errors import InputError


# --- metrics on arrays --------------------------------------------------------------
def _pair(pred, truth) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred) > 0, np.asarray(truth) > 0
    if p.shape != t.shape:
        raise InputError(f"prediction shape {p.shape} does not match the truth shape {t.shape}")
    return p, t


def dice(pred, truth) -> float:
    """Dice overlap ``2|P & T| / (|P| + |T|)`` of two masks (any value > 0 counts); 1.0 when both are empty."""
    p, t = _pair(pred, truth)
    size = int(p.sum()) + int(t.sum())
    return 1.0 if size == 0 else 2.0 * int((p & t).sum()) / size


def pooled_dice(pairs: Iterable[tuple]) -> float:
    """Dice over a whole set: the sum of intersections over the sum of sizes of all ``(pred, truth)`` pairs.

    Every voxel of the set weighs the same (large lesions weigh more than small
    ones). 1.0 when every mask is empty; nan for an empty set.
    """
    inter = size = n = 0
    for pred, truth in pairs:
        p, t = _pair(pred, truth)
        inter += int((p & t).sum())
        size += int(p.sum()) + int(t.sum())
        n += 1
    if n == 0:
        return math.nan
    return 1.0 if size == 0 else 2.0 * inter / size


def mean_dice(pairs: Iterable[tuple]) -> float:
    """The mean of the per-pair (per volume or image) :func:`dice`; nan for an empty set."""
    scores = [dice(p, t) for p, t in pairs]
    return float(np.mean(scores)) if scores else math.nan


def surface(mask) -> np.ndarray:
    """The surface voxels of a binary mask: mask voxels with a background face-neighbour or on the array edge."""
    m = np.asarray(mask) > 0
    if not m.any():
        return m
    structure = ndi.generate_binary_structure(m.ndim, 1)
    return m & ~ndi.binary_erosion(m, structure=structure, border_value=0)


def surface_distances(pred, truth, spacing: Sequence[float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Distances from each surface voxel of ``pred`` to the surface of ``truth``, and the reverse.

    Both masks must be non-empty. ``spacing`` (one value per axis) gives the
    voxel size; default 1 (distances in voxels).
    """
    p, t = _pair(pred, truth)
    sampling = _spacing(spacing, p.ndim)
    if not p.any() or not t.any():
        raise InputError("surface distances need two non-empty masks")
    # crop to the union's bounding box plus one voxel: all surfaces lie inside, so the
    # distance transform (nearest surface voxel) is exact there and much cheaper
    box = _bounding_box(p | t, margin=1)
    p, t = p[box], t[box]
    sp, st = surface(p), surface(t)
    to_truth = ndi.distance_transform_edt(~st, sampling=sampling)[sp]
    to_pred = ndi.distance_transform_edt(~sp, sampling=sampling)[st]
    return to_truth, to_pred


def assd(pred, truth, spacing: Sequence[float] | None = None) -> float:
    """Average symmetric surface distance (see the module docstring); 0.0 if both are empty, inf if one is."""
    p, t = _pair(pred, truth)
    if not p.any() and not t.any():
        return 0.0
    if not p.any() or not t.any():
        return math.inf
    a, b = surface_distances(p, t, spacing)
    return float((a.sum() + b.sum()) / (len(a) + len(b)))


def slice_scores(pred, truth, axis: int = 0, spacing: Sequence[float] | None = None) -> dict[str, np.ndarray]:
    """Per-slice 2D scores of two stacks whose slices along ``axis`` are separate images.

    Returns arrays of one value per slice: ``dice``, ``assd`` (2D, in-plane;
    0.0 both empty, inf one empty), ``pred_voxels``, ``truth_voxels``.
    ``spacing`` is that of the stack (one value per axis); ``axis``'s is ignored.
    """
    p, t = _pair(pred, truth)
    if p.ndim != 3:
        raise InputError(f"per-slice scores need 3D stacks; got {p.ndim}D")
    sampling = _spacing(spacing, 3)
    in_plane = tuple(s for a, s in enumerate(sampling) if a != axis)
    p, t = np.moveaxis(p, axis, 0), np.moveaxis(t, axis, 0)
    ps, ts = p.sum(axis=(1, 2)), t.sum(axis=(1, 2))
    inter = (p & t).sum(axis=(1, 2))
    size = ps + ts
    d = np.where(size == 0, 1.0, 2.0 * inter / np.maximum(size, 1))
    distances = np.where((ps == 0) & (ts == 0), 0.0, np.inf)
    for s in np.flatnonzero((ps > 0) & (ts > 0)):
        distances[s] = assd(p[s], t[s], in_plane)
    return {"dice": d.astype(float), "assd": distances, "pred_voxels": ps.astype(np.int64), "truth_voxels": ts.astype(np.int64)}


def _spacing(spacing, ndim: int) -> tuple[float, ...]:
    if spacing is None:
        return (1.0,) * ndim
    s = tuple(float(v) for v in spacing)
    if len(s) != ndim or not all(v > 0 and math.isfinite(v) for v in s):
        raise InputError(f"spacing must give one positive size per axis ({ndim}); got {spacing}")
    return s


def _bounding_box(m: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    box = []
    for a in range(m.ndim):
        other = tuple(b for b in range(m.ndim) if b != a)
        idx = np.flatnonzero(m.any(axis=other))
        box.append(slice(max(int(idx[0]) - margin, 0), min(int(idx[-1]) + 1 + margin, m.shape[a])))
    return tuple(box)


# --- files ----------------------------------------------------------------------------------
_PAIR_SUFFIX = re.compile(r"[_-](pred|prediction|predictions|seg|segmentation|mask|masks|label|labels|truth|gt)$", re.IGNORECASE)


def pair_inputs(pred: str | os.PathLike, truth: str | os.PathLike) -> list[tuple[str, Path, Path]]:
    """Resolve ``PRED``/``TRUTH`` command-line arguments into ``(name, pred, truth)`` cases.

    Each may be a NIfTI file, a folder of NIfTI files (paired by file name; a
    trailing ``_pred``, ``_seg``, ``_mask``, ``_label(s)``, ``_truth`` or ``_gt``
    is ignored when pairing), or a folder of 2D images (one case: a stack).
    """
    from ..io.image_folder import is_image_file
    from ..io.nifti import is_nifti_path, nifti_stem

    pred, truth = Path(pred), Path(truth)
    for p in (pred, truth):
        if not p.exists():
            raise InputError(f"{p}: no such file or folder")

    def kind(p: Path) -> str:
        if p.is_file():
            if not is_nifti_path(p):
                raise InputError(f"{p.name}: not a NIfTI file (.nii, .nii.gz) or a folder")
            return "file"
        if any(is_nifti_path(f) for f in p.iterdir() if f.is_file()):
            return "niftis"
        if any(is_image_file(f) for f in p.iterdir() if f.is_file()):
            return "images"
        raise InputError(f"{p}: the folder holds no NIfTI or PNG/TIFF/JPEG files")

    kp, kt = kind(pred), kind(truth)
    if kp != "niftis" and kt != "niftis":  # one case each: a NIfTI file or a 2D image folder
        return [(nifti_stem(pred) if kp == "file" else pred.name, pred, truth)]
    if kp != kt:
        raise InputError(f"give two files or two folders of NIfTI files ({pred.name} and {truth.name} differ)")

    def by_key(folder: Path) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for f in sorted(folder.iterdir()):
            if f.is_file() and is_nifti_path(f):
                key = _PAIR_SUFFIX.sub("", nifti_stem(f)).lower()
                if key in out:
                    raise InputError(f"{folder}: {out[key].name} and {f.name} pair with the same name; keep one")
                out[key] = f
        return out

    preds, truths = by_key(pred), by_key(truth)
    missing = [preds[k].name for k in preds if k not in truths]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"{truth}: no ground truth for {', '.join(missing[:3])}{more} (files pair by name)")
    unscored = len(truths) - len(preds)
    if unscored:
        warnings.warn(f"{truth.name}: {unscored} ground-truth file(s) have no prediction and are not scored", UserWarning, stacklevel=2)
    return [(nifti_stem(preds[k]), preds[k], truths[k]) for k in sorted(preds)]


def read_binary(path: str | os.PathLike, labels: Sequence[int] | None = None):
    """Read a mask (NIfTI file or folder of 2D images) as ``(bool array, spacing, affine or None)``.

    Voxels count as lesion when their label is > 0, or, with ``labels``, when it
    is one of them.
    """
    from ..io.image_folder import read_image_folder
    from ..io.nifti import is_nifti_path, read_nifti, spacing_from_header

    path = Path(path)
    if is_nifti_path(path):
        arr, affine, header = read_nifti(path, labels=True)
        if arr.ndim != 3:
            raise InputError(f"{path.name}: a mask must be 3D; got {arr.ndim}D shape {arr.shape}")
        spacing, affine = spacing_from_header(header), affine
    elif path.is_dir():
        arr, _ = read_image_folder(path, as_labels=True)
        spacing, affine = (1.0, 1.0, 1.0), None
    else:
        raise InputError(f"{path}: not a NIfTI file or a folder of 2D images")
    mask = np.isin(arr, np.asarray(list(labels))) if labels is not None else arr > 0
    return mask, spacing, affine


def evaluate_files(
    pred_paths: Sequence[str | os.PathLike] | str | os.PathLike,
    truth_paths: Sequence[str | os.PathLike] | str | os.PathLike,
    labels: Sequence[int] | None = None,
    per_slice: bool | None = None,
    names: Sequence[str] | None = None,
) -> dict:
    """Score predicted masks against ground truth, paired by position.

    Each path is a NIfTI file or a folder of 2D images. The truth is binarised as
    label > 0, or as "label in ``labels``" (e.g. ``[1, 2, 4]``); the prediction
    as > 0. Shapes must match (:class:`InputError` otherwise). Distances use the
    truth's voxel size (mm for NIfTI, pixels for image folders).

    ``per_slice``: the slices along axis 0 are separate 2D images (image
    folders; stacks such as the cluttered-digits task). The unit of ``mean_dice``
    and ``mean_assd`` is then the slice, ASSD is 2D, and a case's ``assd`` is
    the mean over its slices where both masks are non-empty. Default: True when
    any truth is a folder of 2D images, else False (one unit per volume, 3D ASSD).

    Returns a dict (JSON-ready apart from ``inf``): ``cases`` (per case
    ``name``, ``pred``, ``truth``, ``shape``, ``dice``, ``assd``, ``pred_voxels``,
    ``truth_voxels``; per-slice mode adds ``slices``, ``mean_dice``,
    ``assd_undefined``), ``pooled_dice``, ``mean_dice``, ``mean_assd`` (over the
    units where both masks are non-empty; nan if none), ``assd_undefined``
    (units with exactly one empty mask), ``units``, ``per_slice``, ``labels``.
    """
    if isinstance(pred_paths, (str, os.PathLike)):
        pred_paths = [pred_paths]
    if isinstance(truth_paths, (str, os.PathLike)):
        truth_paths = [truth_paths]
    pred_paths, truth_paths = [Path(p) for p in pred_paths], [Path(p) for p in truth_paths]
    if len(pred_paths) != len(truth_paths):
        raise InputError(f"{len(pred_paths)} prediction(s) for {len(truth_paths)} ground truth(s)")
    if not pred_paths:
        raise InputError("nothing to evaluate")
    if labels is not None:
        labels = [int(v) for v in labels]
    if names is None:
        from ..io.nifti import nifti_stem

        names = [nifti_stem(p) for p in pred_paths]
    if per_slice is None:
        per_slice = any(p.is_dir() for p in truth_paths)

    cases, unit_dice, unit_assd = [], [], []
    inter = size = 0
    for name, pp, tp in zip(names, pred_paths, truth_paths, strict=True):
        truth, spacing, t_affine = read_binary(tp, labels)
        pred, _, p_affine = read_binary(pp)
        if pred.shape != truth.shape:
            raise InputError(f"{pp.name}: prediction shape {pred.shape} does not match the ground truth {tp.name} shape {truth.shape}")
        if t_affine is not None and p_affine is not None and not np.allclose(t_affine, p_affine, atol=1e-3):
            warnings.warn(
                f"{pp.name}: its affine differs from the ground truth {tp.name}'s; scoring voxel by voxel", UserWarning, stacklevel=2
            )
        ps, ts = int(pred.sum()), int(truth.sum())
        i = int((pred & truth).sum())
        inter, size = inter + i, size + ps + ts
        case = {
            "name": name,
            "pred": str(pp),
            "truth": str(tp),
            "shape": list(pred.shape),
            "dice": 1.0 if ps + ts == 0 else 2.0 * i / (ps + ts),
            "pred_voxels": ps,
            "truth_voxels": ts,
        }
        if per_slice:
            s = slice_scores(pred, truth, axis=0, spacing=spacing)
            defined = s["assd"][np.isfinite(s["assd"]) & (s["pred_voxels"] > 0)]
            case.update(
                slices=len(s["dice"]),
                mean_dice=float(s["dice"].mean()),
                assd=float(defined.mean()) if len(defined) else math.nan,
                assd_undefined=int(np.isinf(s["assd"]).sum()),
            )
            unit_dice.extend(s["dice"].tolist())
            unit_assd.extend(s["assd"][(s["pred_voxels"] > 0) | (s["truth_voxels"] > 0)].tolist())
        else:
            case["assd"] = assd(pred, truth, spacing)
            unit_dice.append(case["dice"])
            if ps or ts:
                unit_assd.append(case["assd"])
        cases.append(case)
    finite = [a for a in unit_assd if math.isfinite(a)]
    return {
        "cases": cases,
        "pooled_dice": 1.0 if size == 0 else 2.0 * inter / size,
        "mean_dice": float(np.mean(unit_dice)),
        "mean_assd": float(np.mean(finite)) if finite else math.nan,
        "assd_undefined": len(unit_assd) - len(finite),
        "units": len(unit_dice),
        "per_slice": bool(per_slice),
        "labels": labels,
    }


def to_json_ready(obj):
    """Replace inf/nan floats by None (strict JSON has neither)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: to_json_ready(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json_ready(v) for v in obj]
    return obj


def format_table(result: dict) -> str:
    """A small text table of :func:`evaluate_files`' result."""

    def num(v, digits=4):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else ("inf" if math.isinf(v) else f"{v:.{digits}f}")

    slices = result["per_slice"]
    width = max([4] + [len(c["name"]) for c in result["cases"]])
    cols = ["dice", "mean dice", "assd", "undef", "pred vox", "truth vox"] if slices else ["dice", "assd", "pred vox", "truth vox"]
    lines = [f"{'case':<{width}}  " + "  ".join(f"{c:>10}" for c in cols)]
    for c in result["cases"]:
        values = (
            [num(c["dice"]), num(c["mean_dice"]), num(c["assd"], 3), str(c["assd_undefined"])]
            if slices
            else [num(c["dice"]), num(c["assd"], 3)]
        )
        values += [str(c["pred_voxels"]), str(c["truth_voxels"])]
        lines.append(f"{c['name']:<{width}}  " + "  ".join(f"{v:>10}" for v in values))
    unit = "slices" if slices else "cases"
    lines.append(f"pooled dice  {num(result['pooled_dice'])}")
    lines.append(f"mean dice    {num(result['mean_dice'])}  ({result['units']} {unit})")
    undefined = f"; undefined on {result['assd_undefined']} with one mask empty" if result["assd_undefined"] else ""
    lines.append(f"mean assd    {num(result['mean_assd'], 3)}  (over {unit} with both masks non-empty{undefined})")
    return "\n".join(lines)
