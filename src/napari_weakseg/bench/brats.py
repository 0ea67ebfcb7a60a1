"""The BraTS suite: does tagging help on real brain tumour MRI? (FLAIR + T1c, whole tumour.)

Set up as Vorontsov et al. (journal) Sec. IV-D, as far as four volumes allow:

- **Hemispheres.** Every axial slice is split into its two halves across the left-right axis, each tagged on
  its own: kept when the brain covers >= 25 % of it, presence from 1 % of its brain (``study.halves``). A healthy
  hemisphere at the level of a tumour is then an absence sample that differs from a presence one by the tumour.
- **Folds.** Leave-one-volume-out with a validation volume (``data.brats.folds``): fold f tests on case f,
  validates on case f + 1 (fully annotated, for the best-validation checkpoint) and trains on the others.
- **Masks on whole volumes** ("all or none of the slices from any single volume"): ``volumes`` keeps the masks
  of one training volume (which one rotates with the seed), the others keep their tags only; ``all`` keeps
  every training volume's masks (the fully supervised reference of Fig. 7's gap); ``slices`` keeps a fraction
  of the training volumes' presence half-slices.
- **Scoring** at the source resolution (240x240): the probability is upsampled from the working size and the
  whole held-out volume is scored (3-D Dice over every brain slice; false positives count). For genseg a
  convergence check: mean |residual| on the held-out volume's absence halves against its presence halves.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..log import LOGGER
from .brats_scoring import full_resolution_prob, residual_ratio, score_test, stitched_dice, summarise_brats

ALL_METHODS = ("seg-only", "ae", "mean-teacher", "genseg", "genseg-sepdec", "cyclegan-ssl")

__all__ = [
    "ALL_METHODS",
    "PROFILES",
    "BratsProfile",
    "full_resolution_prob",
    "kept_masks",
    "plan_runs",
    "residual_ratio",
    "run_brats_suite",
    "score_test",
    "stitched_dice",
    "summarise_brats",
]


@dataclass
class BratsProfile:
    preset: str
    size: int  # in-plane working size (square, pixels); the 240x240 slices are area-averaged to it
    steps: int  # training steps per run, every method alike
    seeds: int = 2
    seed_methods: tuple[str, ...] = ("seg-only", "genseg")  # with masks on one volume on every seed; the rest on seed 0 only
    slice_fraction: float = 0.1  # the ``slices`` setting: this share of the training presence half-slices
    volume_fraction: float | None = None  # the ``volumes`` setting: this share of the training volumes (None: one)
    slice_methods: tuple[str, ...] = ("seg-only", "genseg")
    full_methods: tuple[str, ...] = ("seg-only",)  # the ``all`` setting (every training volume's masks)
    halves: bool = True
    roi_min: float = 0.25  # a half-slice is tagged when the brain covers this share of it (paper: 25 %)
    lesion_min: float = 0.01  # presence from this share of its brain (paper: 1 %)
    val_every: int = 25
    min_brain: float = 0.01  # axial slices whose brain mask covers this fraction of the slice are predicted
    brain_normalisation: bool = False  # the paper's (Sec. IV-D) instead of the stored z-scores + percentiles
    overrides: dict = field(default_factory=dict)
    panel_rows: int = 2  # held-out tumour slices in the qualitative figure


PROFILES = {
    # reduced scale for a 2-core CPU: 48x48 slices (240/5), hemispheres 48x24 (padded to 48x32 by the network)
    # (800 steps: a measured 1200-step genseg run on fold 0 reached 0.63 against 300 steps' 0.34; the suite's
    # 2-hour budget allows about 800 for its 40 runs)
    "cpu": BratsProfile(
        preset="quick", size=48, steps=800, val_every=50, overrides={"input_size": None, "batch_size": 8, "annotated_per_batch": 4}
    ),
    # the paper's architecture at the native 240x240 (hemispheres 240x120, padded by the network), for an accelerator
    "gpu": BratsProfile(
        preset="paper",
        size=240,
        steps=20000,
        seeds=3,
        seed_methods=ALL_METHODS,
        slice_fraction=0.01,
        volume_fraction=0.01,  # masks on 1 % of the training volumes (at least one), as Table II's brain column
        brain_normalisation=True,
        val_every=500,
        overrides={"input_size": None, "normalisation": "none"},
    ),
}


def plan_runs(prof: BratsProfile, methods: tuple[str, ...] = ALL_METHODS, seed: int = 0) -> list[tuple[str, str]]:
    """(method, setting) pairs of one fold and seed, settings ``volumes``, ``all``, ``slices``: seed 0 runs
    every method with masks on one volume, ``full_methods`` with all masks and ``slice_methods`` with a share
    of slices; the other seeds repeat ``seed_methods`` with masks on one volume (the targets' comparison)."""
    if seed:
        return [(m, "volumes") for m in methods if m in prof.seed_methods]
    return (
        [(m, "volumes") for m in methods]
        + [(m, "all") for m in prof.full_methods if m in methods]
        + [(m, "slices") for m in prof.slice_methods if m in methods]
    )


def kept_masks(cases, train: list[int], val: int, setting: str, seed: int, prof: BratsProfile) -> list[np.ndarray]:
    """Per case of ``train + [val]``, (Z, S, S) bool: where its tumour mask is kept for ``setting``.
    The validation volume keeps all of it (it selects the checkpoint, it is not trained on)."""
    full = [np.ones_like(cases[i].tumour, bool) for i in train]
    none = [np.zeros_like(cases[i].tumour, bool) for i in train]
    if setting == "all":
        kept = full
    elif setting == "volumes":  # masks on whole volumes: one, or a share of them; which ones rotates with the seed
        n = 1 if prof.volume_fraction is None else max(1, int(round(prof.volume_fraction * len(train))))
        picks = {(seed + j) % len(train) for j in range(n)}
        kept = [full[k] if k in picks else none[k] for k in range(len(train))]
    elif setting == "slices":
        kept = none
        units = []  # (train position, row, half or -1)
        for k, i in enumerate(train):
            c = cases[i]
            if prof.halves:
                ht = c.half_tags(prof.roi_min, prof.lesion_min)
                units += [(k, int(r), int(h)) for r, h in zip(*np.nonzero(ht == 1), strict=True)]
            else:
                units += [(k, int(r), -1) for r in np.flatnonzero(c.presence)]
        n = min(len(units), max(1, int(round(prof.slice_fraction * len(units)))))
        for j in np.random.default_rng((seed, 5)).permutation(len(units))[:n]:
            k, r, h = units[j]
            at = cases[train[k]].split().at
            cols = slice(None) if h < 0 else (slice(0, at) if h == 0 else slice(at, None))
            kept[k][r, :, cols] = True
    else:
        raise ValueError(setting)
    return kept + [np.ones_like(cases[val].tumour, bool)]


def run_brats_suite(
    data: Path,
    out: Path,
    profile: str | BratsProfile = "cpu",
    seeds: int | None = None,
    steps: int | None = None,
    methods: tuple[str, ...] = ALL_METHODS,
    device: str = "auto",
    log=LOGGER.info,
    work: Path | None = None,
    folds: list[int] | None = None,
) -> dict:
    """Build the studies, train, predict and score every planned run of every fold and seed; returns (and
    writes) the results, report.md and the figures."""
    from ..data.brats import find_brats, list_cases, load_brats_case
    from ..data.brats import folds as fold_split
    from ..methods import method_class
    from ..training.trainer import resolve_device
    from .common import resolve_profile, results_header, save_results

    prof, profile = resolve_profile(profile, PROFILES, BratsProfile)
    for m in methods:
        method_class(m)  # an unknown name is an InputError before anything runs
    folder = find_brats(data)
    case_dirs = list_cases(folder)
    t_start = time.perf_counter()
    steps, seeds = steps or prof.steps, seeds or prof.seeds
    dev = resolve_device(device)
    out, work = Path(out), Path(work) if work else Path(out) / "work"
    out.mkdir(parents=True, exist_ok=True)
    log(f"[brats] reading {len(case_dirs)} cases at {prof.size}x{prof.size}")
    cases = [load_brats_case(c, prof.size, prof.min_brain, prof.brain_normalisation) for c in case_dirs]
    fold_split(len(cases), 0)  # fewer than 3 cases: an InputError before anything runs
    fold_ids = list(range(len(cases))) if folds is None else list(folds)
    results = {
        **results_header("brats", profile, dev),
        "steps": steps,
        "seeds": seeds,
        "methods": list(methods),
        "settings": {
            "preset": prof.preset,
            "size": prof.size,
            "overrides": prof.overrides,
            "data": str(folder),
            "halves": prof.halves,
            "roi_min": prof.roi_min,
            "lesion_min": prof.lesion_min,
            "slice_fraction": prof.slice_fraction,
            "seed_methods": list(prof.seed_methods),
            "slice_methods": list(prof.slice_methods),
            "full_methods": list(prof.full_methods),
            "val_every": prof.val_every,
            "min_brain": prof.min_brain,
            "channels": ["FLAIR", "T1c"],
            "brain_normalisation": prof.brain_normalisation,
            "cases": [_case_counts(c, prof) for c in cases],
        },
        "folds": [],
        "runs": [],
        "checkpoint_scored": "best",  # each run's best validation checkpoint
    }
    panel = None
    for fold in fold_ids:
        train, val, test = fold_split(len(cases), fold)
        results["folds"].append(
            {"fold": fold, "train": [cases[i].name for i in train], "validation": cases[val].name, "test": cases[test].name}
        )
        for seed in range(seeds):
            for method, setting in plan_runs(prof, tuple(methods), seed):
                tag = f"fold{fold}-seed{seed}"
                kept = kept_masks(cases, train, val, setting, seed, prof)
                study_dir = work / tag / f"study-{setting}"
                if not (study_dir / "study.json").is_file():
                    _build(study_dir, [cases[i] for i in [*train, val]], kept, prof)
                log(f"[brats] fold {fold} seed {seed} (test {cases[test].name}): {method}, masks {setting}")
                row, model = train_and_test(
                    study_dir, work / tag / f"{method}-{setting}", method, prof, steps, seed, dev, cases[test], cases[val].name
                )
                row.update(method=method, setting=setting, fold=fold, seed=seed, **_annotation_counts(kept[:-1], cases, train, prof))
                results["runs"].append(row)
                log(
                    f"[brats]   Dice {row['dice']:.3f} (best validation {row['best_val_dice'] or 0:.3f} at step "
                    f"{row['best_step']}; {row['train_seconds']:.0f} s)"
                )
                save_results(results, out)
                if panel is None and method == "genseg" and setting == "volumes":
                    panel = panel_slices(model, cases[test], prof.panel_rows)
    results["summary"] = summarise_brats(results)
    results["total_seconds"] = time.perf_counter() - t_start
    save_results(results, out)
    from .brats_report import PANEL, write_brats_report
    from .panel import write_panel

    if panel is not None:
        write_panel(out / PANEL, panel, "input (FLAIR)")
    write_brats_report(results, out)
    return results


def _case_counts(case, prof: BratsProfile) -> dict:
    d = {
        "name": case.name,
        "slices": int(len(case.slices)),
        "presence": int(case.presence.sum()),
        "absence": int((case.tags == 2).sum()),
        "unknown": int((case.tags == 0).sum()),
    }
    if prof.halves:
        ht = case.half_tags(prof.roi_min, prof.lesion_min)
        lo, hi = np.flatnonzero(case.presence)[[0, -1]] if case.presence.any() else (0, -1)
        inside = ht[lo : hi + 1]
        d.update(
            {
                "presence_halves": int((ht == 1).sum()),
                "absence_halves": int((ht == 2).sum()),
                "unknown_halves": int((ht == 0).sum()),
                "absence_halves_in_tumour_range": int((inside == 2).sum()),
                "absence_slices_in_tumour_range": int((case.tags[lo : hi + 1] == 2).sum()),
            }
        )
    return d


def _annotation_counts(kept: list[np.ndarray], cases, train: list[int], prof: BratsProfile) -> dict:
    """Annotated / presence units (half-slices, or slices) of the training volumes."""
    n_ann = n_p = 0
    for keep, i in zip(kept, train, strict=True):
        c = cases[i]
        if prof.halves:
            ht, at = c.half_tags(prof.roi_min, prof.lesion_min), c.split().at
            for h, cols in ((0, slice(0, at)), (1, slice(at, None))):
                p = ht[:, h] == 1
                n_p += int(p.sum())
                n_ann += int((p & (c.tumour[:, :, cols] * keep[:, :, cols]).any(axis=(1, 2))).sum())
        else:
            n_p += int(c.presence.sum())
            n_ann += int((c.presence & (c.tumour * keep).any(axis=(1, 2))).sum())
    return {"n_annotated": n_ann, "n_train_presence": n_p}


def _build(folder: Path, cases, kept, prof: BratsProfile) -> None:
    from ..data.brats import build_brats_study

    shutil.rmtree(folder, ignore_errors=True)
    build_brats_study(folder, cases, kept, prof.halves, prof.roi_min, prof.lesion_min)


def train_and_test(
    study_dir: Path, run_dir: Path, method: str, prof: BratsProfile, steps: int, seed: int, dev, test, val_name: str
) -> tuple[dict, object]:
    """Train ``method`` on the study (validating on image ``val_name``), predict the ``test`` case with the
    best-validation checkpoint and score it at full resolution; returns (the scores, the loaded TrainedModel)."""
    from ..inference import TrainedModel
    from ..study import load_study
    from .common import train_run
    from .report import read_curve

    val = {"val_images": [val_name], "val_every": prof.val_every}
    result, _, timer, wall = train_run(load_study(study_dir), run_dir, method, prof, steps, seed, dev, **val)
    model = TrainedModel.load(run_dir, which="best", device=str(dev))
    t1 = time.perf_counter()
    row = score_test(model, test, prof)
    infer = time.perf_counter() - t1
    row.update(
        {
            "best_val_dice": result.best_dice,
            "best_step": _best_step(run_dir),
            "train_seconds": wall,
            "median_step_s": timer.median_step_s(),
            "inference_s_per_slice": infer / max(row["test_slices"], 1),
            "curve": read_curve(run_dir / "metrics.jsonl"),
        }
    )
    return row, model


def _best_step(run_dir: Path) -> int | None:
    from ..training.checkpoint import load_tensors

    path = Path(run_dir) / "best.pt"
    return int(load_tensors(path)["step"]) if path.is_file() else None


def panel_slices(model, case, rows: int) -> dict:
    """The Fig. 6 panel's arrays for ``rows`` held-out tumour slices (the largest tumour, then evenly
    spaced by tumour area): FLAIR input, healthy and residual (FLAIR channel), prediction, truth,
    each (rows, S, S)."""
    area = case.tumour.sum(axis=(1, 2), dtype=np.int64)  # signed: -area must not wrap
    ranked = np.argsort(-area, kind="stable")[: int((area > 0).sum())]
    pick = ranked[np.linspace(0, max(len(ranked) // 2, 0), rows).round().astype(int)] if len(ranked) else np.arange(min(rows, len(area)))
    from .panel import panel_arrays

    return panel_arrays(model, case.images[:, pick], case.tumour[pick], [f"{case.name}\nslice {case.slices[i]}" for i in pick])


def load_and_report(out: Path) -> dict:
    """``--report-only``: report.md and the figures again from results.json (the panel stays)."""
    from .brats_report import write_brats_report
    from .common import load_suite_results, save_results

    results = load_suite_results(out, "brats")
    results["summary"] = summarise_brats(results)
    save_results(results, out)  # the summary as this version computes it
    write_brats_report(results, Path(out))
    return results
