"""The BraTS suite: every method on brain tumour MRI (FLAIR + T1c, whole tumour), split by volume,
with masks kept on a fraction of the training volumes' presence slices.

- At the profile's base fraction (1 %): seg-only, ae, mean-teacher, genseg, genseg-sepdec and
  cyclegan-ssl (Dice on the held-out volume; the share of the 1 %→100 % seg-only gap each covers,
  the paper's Fig. 7).
- The annotation-efficiency curve: genseg and seg-only at several fractions (Fig. 8).
- cyclegan-ssl against seg-only at 10 % and 20 % (issue #6).

Split: seed ``s`` holds out case ``s`` (mod the number of cases; ``n_test`` of them with more cases)
and trains on the others, so several seeds rotate the held-out volume (leave-one-volume-out).
Annotated slices: one random order of the training presence slices per seed; a fraction keeps the
first ``round(fraction x n)`` (at least 1), so smaller fractions' slices are subsets of larger ones'.
Every tag stays (presence / absence from the tumour masks inside the brain mask).
Dice: pooled over every kept slice of the held-out volume(s) (presence and absence; false positives
count): with one held-out volume this is its 3-D Dice at the working resolution.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ALL_METHODS = ("seg-only", "ae", "mean-teacher", "genseg", "genseg-sepdec", "cyclegan-ssl")
SEMI = ("ae", "mean-teacher", "genseg", "genseg-sepdec", "cyclegan-ssl")


@dataclass
class BratsProfile:
    preset: str
    size: int  # in-plane working size (square, pixels); the 240x240 slices are area-averaged to it
    steps: int  # training steps per run, every method alike
    base_fraction: float = 0.01  # every method trains at this fraction (the Fig. 7 setting)
    curve_methods: tuple[str, ...] = ("seg-only", "genseg")
    curve_fractions: tuple[float, ...] = (0.01, 0.1, 1.0)  # Fig. 8; 1.0 = fully supervised
    cyclegan_fractions: tuple[float, ...] = (0.1, 0.2)  # issue #6: cyclegan-ssl and seg-only at these
    n_test: int = 1  # held-out cases per seed
    min_brain: float = 0.01  # keep axial slices whose brain mask covers this fraction of the slice
    brain_normalisation: bool = False  # the paper's (Sec. IV-D) instead of the stored z-scores + percentiles
    overrides: dict = field(default_factory=dict)
    panel_rows: int = 2  # held-out tumour slices in the qualitative figure


PROFILES = {
    # reduced scale for a 2-core CPU: 48x48 slices (240/5), small networks, 250 steps per run, 14 runs
    "cpu": BratsProfile(preset="quick", size=48, steps=250,
                        overrides={"input_size": None, "batch_size": 8, "annotated_per_batch": 4}),
    # the paper's architecture at the native 240x240 (padded to 256 by the network), for an accelerator
    "gpu": BratsProfile(preset="paper", size=240, steps=20000, curve_fractions=(0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0),
                        brain_normalisation=True, overrides={"input_size": None, "normalisation": "none"}),
}


def plan_runs(prof: BratsProfile, methods: tuple[str, ...] = ALL_METHODS) -> list[tuple[str, float]]:
    """(method, fraction) pairs, each once, ordered by fraction then by ``ALL_METHODS``."""
    runs = {(m, prof.base_fraction) for m in methods}
    runs |= {(m, f) for m in prof.curve_methods if m in methods for f in prof.curve_fractions}
    runs |= {(m, f) for m in ("seg-only", "cyclegan-ssl") if m in methods for f in prof.cyclegan_fractions}
    order = {m: i for i, m in enumerate(ALL_METHODS)}
    return sorted(runs, key=lambda mf: (mf[1], order.get(mf[0], 99), mf[0]))


def run_brats_suite(data: Path, out: Path, profile: "str | BratsProfile" = "cpu", seeds: int = 1, steps: int | None = None,
                    methods: tuple[str, ...] = ALL_METHODS, device: str = "auto", log=print, work: Path | None = None) -> dict:
    """Build the studies, train, predict and score every planned run; returns (and writes) the
    results, report.md and the figures."""
    from ..data.brats import find_brats, list_cases, load_brats_case, split_cases
    from ..methods import method_class
    from ..training.trainer import resolve_device
    from .common import resolve_profile, results_header, save_results

    prof, profile = resolve_profile(profile, PROFILES, BratsProfile)
    for m in methods:
        method_class(m)  # an unknown name is an InputError before anything runs
    folder = find_brats(data)
    case_dirs = list_cases(folder)
    t_start = time.perf_counter()
    steps = steps or prof.steps
    dev = resolve_device(device)
    out, work = Path(out), Path(work) if work else Path(out) / "work"
    out.mkdir(parents=True, exist_ok=True)
    log(f"[brats] reading {len(case_dirs)} cases at {prof.size}x{prof.size}")
    cases = [load_brats_case(c, prof.size, prof.min_brain, prof.brain_normalisation) for c in case_dirs]
    plan = plan_runs(prof, tuple(methods))
    results = {**results_header("brats", profile, dev), "steps": steps, "seeds": seeds, "methods": list(methods),
               "settings": {"preset": prof.preset, "size": prof.size, "overrides": prof.overrides, "data": str(folder),
                            "base_fraction": prof.base_fraction, "curve_methods": list(prof.curve_methods),
                            "curve_fractions": list(prof.curve_fractions), "cyclegan_fractions": list(prof.cyclegan_fractions),
                            "n_test": prof.n_test, "min_brain": prof.min_brain, "channels": ["FLAIR", "T1c"],
                            "brain_normalisation": prof.brain_normalisation,
                            "cases": [{"name": c.name, "slices": int(len(c.slices)), "presence": int(c.presence.sum()),
                                       "absence": int((c.tags == 2).sum()), "unknown": int((c.tags == 0).sum())} for c in cases]},
               "plan": [list(p) for p in plan], "splits": [], "runs": []}
    panel = None
    for seed in range(seeds):
        train_idx, test_idx = split_cases(len(cases), seed, prof.n_test)
        train, test = [cases[i] for i in train_idx], [cases[i] for i in test_idx]
        results["splits"].append({"seed": seed, "train": [c.name for c in train], "test": [c.name for c in test]})
        studies = {}
        for method, fraction in plan:
            if fraction not in studies:
                studies[fraction] = _study(work / f"seed{seed}" / f"study-{fraction:g}", train, fraction, seed, prof.size)
            study_dir, n_ann = studies[fraction]
            log(f"[brats] seed {seed} (test {', '.join(c.name for c in test)}): {method} at {fraction:.0%} ({n_ann} annotated slices)")
            run_dir = work / f"seed{seed}" / f"{method}-{fraction:g}"
            row, model = train_and_test(study_dir, run_dir, method, prof, steps, seed, dev, test)
            row.update(method=method, fraction=fraction, seed=seed, n_annotated=n_ann,
                       n_train_presence=int(sum(c.presence.sum() for c in train)),
                       n_train_absence=int(sum((c.tags == 2).sum() for c in train)))
            results["runs"].append(row)
            log(f"[brats]   Dice {row['dice_pooled']:.3f} ({row['train_seconds']:.0f} s)")
            save_results(results, out)
            if seed == 0 and method == "genseg" and fraction == prof.base_fraction:
                panel = panel_slices(model, test[0], prof.panel_rows)
    results["summary"] = summarise_brats(results)
    results["total_seconds"] = time.perf_counter() - t_start
    save_results(results, out)
    from .brats_report import PANEL, write_brats_report
    from .panel import write_panel

    if panel is not None:
        write_panel(out / PANEL, panel, "input (FLAIR)")
    write_brats_report(results, out)
    return results


def _study(folder: Path, train, fraction: float, seed: int, size: int) -> tuple[Path, int]:
    from ..data.brats import build_brats_study

    shutil.rmtree(folder, ignore_errors=True)
    _, n = build_brats_study(folder, train, fraction, seed, size)
    return folder, n


def train_and_test(study_dir: Path, run_dir: Path, method: str, prof: BratsProfile, steps: int, seed: int, dev, test) -> tuple[dict, object]:
    """Train ``method`` on the study through the Trainer, predict every kept slice of the ``test``
    cases; returns (the scores, the loaded TrainedModel)."""
    from ..inference import TrainedModel
    from ..study import load_study
    from ..training.events import Failed
    from ..training.metrics import pooled_dice
    from ..training.trainer import Trainer, TrainConfig
    from .common import StepTimer
    from .report import read_curve

    shutil.rmtree(run_dir, ignore_errors=True)
    timer = StepTimer()

    config = TrainConfig(method=method, preset=prof.preset, steps=steps, device=str(dev), seed=seed, val_fraction=0.0,
                         checkpoint_every=max(steps, 1), overrides=prof.overrides)
    t0 = time.perf_counter()
    result = Trainer(load_study(study_dir), run_dir, config, on_event=timer).run()
    wall = time.perf_counter() - t0
    if isinstance(result, Failed):
        raise RuntimeError(f"{method} failed: {result.message}\n{result.details}")
    model = TrainedModel.load(run_dir, which="last", device=str(dev))
    preds, truths, per_volume = [], [], {}
    t1 = time.perf_counter()
    for case in test:
        pred = model.predict_volume(case.images)["prob"] >= model.config.threshold  # (Z, S, S)
        preds.append(pred)
        truths.append(case.tumour)
        per_volume[case.name] = pooled_dice([(pred, case.tumour)])
    infer = time.perf_counter() - t1
    pred, truth = np.concatenate(preds), np.concatenate(truths)
    presence = np.concatenate([c.presence for c in test])
    absence = np.concatenate([c.tags == 2 for c in test])
    median = timer.median_step_s()
    return {
        "dice_pooled": pooled_dice(zip(pred, truth)),
        "dice_pooled_presence": pooled_dice(zip(pred[presence], truth[presence])),
        "dice_per_volume": per_volume,
        "false_positive_pixels_absence": int(pred[absence].sum()),
        "test_slices": int(len(pred)), "test_presence": int(presence.sum()), "test_absence": int(absence.sum()),
        "train_seconds": wall, "median_step_s": median, "inference_s_per_slice": infer / max(len(pred), 1),
        "curve": read_curve(run_dir / "metrics.jsonl"),
    }, model


def panel_slices(model, case, rows: int) -> dict:
    """The Fig. 6 panel's arrays for ``rows`` held-out tumour slices (the largest tumour, then evenly
    spaced by tumour area): FLAIR input, healthy and residual (FLAIR channel), prediction, truth,
    each (rows, S, S)."""
    area = case.tumour.sum(axis=(1, 2), dtype=np.int64)  # signed: -area must not wrap
    ranked = np.argsort(-area, kind="stable")[: int((area > 0).sum())]
    pick = ranked[np.linspace(0, max(len(ranked) // 2, 0), rows).round().astype(int)] if len(ranked) else np.arange(min(rows, len(area)))
    from .panel import panel_arrays

    return panel_arrays(model, case.images[:, pick], case.tumour[pick], [f"{case.name}\nslice {case.slices[i]}" for i in pick])


def summarise_brats(results: dict) -> dict:
    """Mean (std over seeds) per (method, fraction); the curve; gap shares; cyclegan-ssl vs seg-only."""
    groups: dict[tuple, list] = {}
    for r in results["runs"]:
        groups.setdefault((r["method"], r["fraction"]), []).append(r)
    table = {}
    for (m, f), rows in groups.items():
        d = [r["dice_pooled"] for r in rows]
        table[f"{m}|{f:g}"] = {"method": m, "fraction": f, "n": len(rows), "dice_mean": float(np.mean(d)),
                               "dice_std": float(np.std(d, ddof=1)) if len(d) > 1 else None,
                               "dice_presence_mean": float(np.mean([r["dice_pooled_presence"] for r in rows])),
                               "fp_absence_mean": float(np.mean([r["false_positive_pixels_absence"] for r in rows])),
                               "n_annotated": [r["n_annotated"] for r in rows],
                               "n_train_presence": [r["n_train_presence"] for r in rows],
                               "train_seconds": float(np.mean([r["train_seconds"] for r in rows]))}

    def dice(m, f):
        return table.get(f"{m}|{f:g}", {}).get("dice_mean")

    st = results["settings"]
    base = st["base_fraction"]
    curve = {m: [[f, dice(m, f)] for f in st["curve_fractions"] if dice(m, f) is not None] for m in st["curve_methods"]}
    low, full = dice("seg-only", base), dice("seg-only", 1.0)
    gap = {}
    if low is not None and full is not None:
        for m in SEMI:
            if dice(m, base) is not None:
                gap[m] = {"dice": dice(m, base), "share": (dice(m, base) - low) / (full - low) if abs(full - low) > 1e-9 else None}
    versus = {f"{f:g}": {"cyclegan-ssl": dice("cyclegan-ssl", f), "seg-only": dice("seg-only", f)}
              for f in st["cyclegan_fractions"] if dice("cyclegan-ssl", f) is not None and dice("seg-only", f) is not None}
    return {"table": table, "curve": curve, "gap": {"seg_only_low": low, "seg_only_full": full, "methods": gap},
            "cyclegan_vs_seg_only": versus}


def load_and_report(out: Path) -> dict:
    """``--report-only``: report.md and the figures again from results.json (the panel stays)."""
    from .brats_report import write_brats_report
    from .common import load_suite_results, save_results

    results = load_suite_results(out, "brats")
    results["summary"] = summarise_brats(results)
    save_results(results, out)  # the summary as this version computes it
    write_brats_report(results, Path(out))
    return results
