"""The annotation-effort benchmark (``weakseg bench effort``): how many painted slices buy a given Dice on the
volume being annotated, with the dock's loop driven by a simulated annotator (``napari_weakseg.annotator``).

For each BraTS volume (FLAIR + T1c at the stored 240x240, all 155 axial slices, as a user opens it): tags from
the whole-tumour mask inside the brain mask (slices without brain stay unknown), no mask but ``start`` painted
slices (evenly spread over the presence slices), then rounds of correct -> accept -> retrain, one more painted
slice a round. The dock's default method runs each strategy (suggestions, random, oracle) from one shared first
round; seg-only and the alternative method are trained on the slices the default method's suggestions chose
(``replay``), so that the methods are compared at equal annotation.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..log import LOGGER
from .effort_profile import PROFILES, THRESHOLDS, EffortProfile, plan, settings_profile


def build_case_study(case: Path, folder: Path, halves: bool = False) -> np.ndarray:
    """A study folder of one BraTS case as ``weakseg study create --tags-from-masks --roi-mask`` builds it,
    its masks then erased (the tags stay). Returns the truth (Z, Y, X) bool: whole tumour inside the brain."""
    from ..data.brats import BRAIN, CHANNELS, LABELS
    from ..io.case import load_case, load_mask
    from ..study import Study, save_study
    from ..study.build import keep_masks, split_in_halves, tags_from_masks

    volume = load_case([case / f"{c}.nii.gz" for c in CHANNELS])
    brain = load_mask(case / f"{BRAIN}.nii.gz", volume) > 0
    truth = (load_mask(case / f"{LABELS}.nii.gz", volume) > 0) & brain
    study = Study()
    im = study.add_image(volume, name=case.name, mask=truth.astype(np.uint8))
    if halves:
        split_in_halves(study, im, brain)
    tags_from_masks(im, brain)
    keep_masks(study, 0)
    save_study(study, folder)
    return truth


def run_effort_suite(data: Path, out: Path, profile="cpu", device: str = "auto", log=LOGGER.info, work: Path | None = None) -> dict:
    from ..data.brats import find_brats, list_cases
    from ..training.trainer import resolve_device
    from .common import resolve_profile, results_header, save_results

    prof, name = resolve_profile(profile, PROFILES, EffortProfile)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work) if work else out / "work"
    cases = list_cases(find_brats(data), minimum=1)[: prof.cases]
    header = results_header("effort", name, resolve_device(device))
    # every training process on the same threads: the dock takes the cores free at its start, and rounds run on
    # 1 thread while another job ran gave other numbers (seed 2, pat0003: 0.651 against 0.694 at one painted slice)
    threads = header["machine"]["torch_threads"]
    results = {**header, "settings": asdict(prof), "threads": threads, "cases": [c.name for c in cases], "curves": []}
    t_suite = time.perf_counter()
    for case in cases:
        for seed in prof.seeds:
            folder = work / case.name / (f"seed{seed}" if len(prof.seeds) > 1 else "")
            _run_case(case, seed, prof, folder, results, out, device, log, threads)
    results["wall_s"] = time.perf_counter() - t_suite
    results["summary"] = summarise(results)
    save_results(results, out)
    from .effort_report import write_effort_report

    write_effort_report(results, out)
    return results


def _run_case(case: Path, seed: int, prof: EffortProfile, folder: Path, results: dict, out: Path, device: str, log, threads: int) -> None:
    """Every planned curve of one volume and seed (``plan``), appended to ``results["curves"]`` as it runs; each
    training process on ``threads`` torch threads."""
    from ..annotator import LoopSettings, SimulatedAnnotator, candidates, spread_slices
    from .common import save_results

    base = folder / "start"
    truth = build_case_study(case, base, prof.halves)
    overrides = dict(prof.overrides)
    settings = LoopSettings(
        prof.method, prof.steps, prof.retrain_steps, prof.warm_lr, device=device, seed=seed, overrides=overrides, threads=threads
    )
    first = SimulatedAnnotator(base, truth, settings)
    start = spread_slices(candidates(first.image), prof.start)
    first.paint(start)
    log(f"{case.name}, seed {seed}: {len(candidates(first.image)) + prof.start} presence slices, start {start}")
    trained: dict[str, SimulatedAnnotator] = {}  # method -> its annotator after the shared first round
    order: list[int] = []
    for method, strategy in plan(prof):
        if method not in trained:
            trained[method] = first.branch(folder / f"{method}-first")
            trained[method].settings.method = method
            trained[method].run(strategy, 0)
        ann = trained[method].branch(folder / f"{method}-{strategy}")
        size = ann.round_config()["overrides"]["input_size"]  # the working size: the dock's for these slices, or the profile's
        curve = {"case": case.name, "seed": seed, "method": method, "strategy": strategy, "start": start, "input_size": size, "rounds": []}
        results["curves"].append(curve)

        def saved(rnd, curve=curve, ann=ann):
            curve["rounds"] = [r.to_dict() for r in ann.rounds]
            save_results(results, out)
            log(f"  {curve['method']:>12} {curve['strategy']:>8}: {len(rnd.painted)} painted, Dice {rnd.dice:.3f}")

        saved(ann.rounds[-1])
        ann.run(strategy, prof.rounds, order=order, on_round=saved)
        if (method, strategy) == (prof.method, "suggest"):
            order = [r.next_slice for r in ann.rounds if r.next_slice is not None]


def pool_results(parts: list[dict]) -> dict:
    """One results dict from runs of the same settings on other seeds (e.g. a profile's seeds and a held-out
    ``--seed-list``): their curves together, the seeds in order, the profile ``pooled`` unless all share one.
    Settings other than the seeds, or the volumes, that differ, or a seed run twice, are an InputError."""
    from ..errors import InputError

    if len(parts) < 2:
        raise InputError("--pool: give two results folders or more")

    def same(r):
        return {k: v for k, v in r["settings"].items() if k != "seeds"}, r["cases"]

    first = parts[0]["settings"]
    for r in parts[1:]:
        if same(r) != same(parts[0]):
            diff = sorted(k for k in {**r["settings"], **first} if k != "seeds" and r["settings"].get(k) != first.get(k))
            what = ", ".join(diff) or "their volumes"
            raise InputError(f"--pool: the runs differ in {what}; pool only runs of one profile on other seeds")
    seeds = [s for r in parts for s in r["settings"]["seeds"]]
    if len(set(seeds)) < len(seeds):
        raise InputError(f"--pool: a seed appears in two runs (seeds {', '.join(map(str, seeds))})")
    names, threads = {r["profile"] for r in parts}, {r.get("threads") for r in parts}
    pooled = {
        **parts[0],
        "profile": names.pop() if len(names) == 1 else "pooled",
        "threads": threads.pop() if len(threads) == 1 else None,  # fixed in every run, or not said
        "settings": {**parts[0]["settings"], "seeds": seeds},
        "curves": [c for r in parts for c in r["curves"]],
        "wall_s": sum(r.get("wall_s", 0.0) for r in parts),
        "pooled_from": [{"profile": r["profile"], "seeds": r["settings"]["seeds"], "command": r.get("command")} for r in parts],
    }
    pooled["summary"] = summarise(pooled)
    return pooled


def complete_cases(results: dict) -> list[str]:
    """The volumes whose every planned curve ran all its rounds for every seed (a suite stopped early reports
    only those)."""
    prof = settings_profile(results["settings"])
    done = []
    for case in results["cases"]:
        curves = {(c.get("seed", prof.seeds[0]), c["method"], c["strategy"]): c for c in results["curves"] if c["case"] == case}
        if all((seed, *k) in curves and len(curves[seed, *k]["rounds"]) == prof.rounds + 1 for seed in prof.seeds for k in plan(prof)):
            done.append(case)
    return done


def summarise(results: dict) -> dict:
    """Mean Dice per (method, strategy) and painted count over the complete volumes (``complete_cases``) and the
    seeds, its spread over the seeds (the standard deviation of the seeds' means over the volumes), the painted
    slices each volume and seed needed to reach each threshold, and the mean wall time per round."""
    rows = {}
    cases = complete_cases(results)
    for c in (c for c in results["curves"] if c["case"] in cases):
        key = f"{c['method']} / {c['strategy']}"
        empty = {
            "method": c["method"],
            "strategy": c["strategy"],
            "by_painted": {},
            "by_seed": {},
            "reach": {},
            "round_s": [],
            "worst": [],
            "chance": [],
            "errors": [],
            "kept_start": 0,
            "retrains": 0,
        }
        row = rows.setdefault(key, empty)
        seed = str(c.get("seed", 0))
        for i, r in enumerate(c["rounds"]):
            row["by_painted"].setdefault(str(len(r["painted"])), []).append(r["dice"])
            row["by_seed"].setdefault(seed, {}).setdefault(str(len(r["painted"])), []).append(r["dice"])
            row["round_s"].append(r["train_s"] + r["predict_s"])
            row["worst"].append(r.get("worst_in_top", 0))
            row["chance"].append(r.get("worst_by_chance", 0.0))
            row["errors"].append(r.get("errors_in_top", 0))
            if i and "fit_step" in r:  # a retrain: did it keep its starting weights (``TrainConfig.keep_best_fit``)?
                row["retrains"] += 1
                row["kept_start"] += int(r.get("fit_step") == 0)
        for t in THRESHOLDS:
            hit = [len(r["painted"]) for r in c["rounds"] if r["dice"] >= t]
            row["reach"].setdefault(f"{t:.2f}", []).append(hit[0] if hit else None)
    for row in rows.values():
        row["mean"] = {k: float(np.mean(v)) for k, v in row["by_painted"].items()}
        row["n_runs"] = {k: len(v) for k, v in row["by_painted"].items()}
        seed_means = {k: [float(np.mean(s[k])) for s in row["by_seed"].values() if k in s] for k in row["by_painted"]}
        row["seed_sd"] = {k: float(np.std(v)) if len(v) > 1 else None for k, v in seed_means.items()}
        row["mean_round_s"] = float(np.mean(row["round_s"])) if row["round_s"] else None
        # the suggestions' check (issue #17 item 5): worst-Dice slices among the top suggestions, against chance
        row["worst_in_top"] = float(np.mean(row["worst"])) if row["worst"] else None
        row["worst_by_chance"] = float(np.mean(row["chance"])) if row["chance"] else None
        row["errors_in_top"] = float(np.mean(row["errors"])) if row["errors"] else None
        del row["round_s"], row["worst"], row["chance"], row["errors"], row["by_seed"]
    return {"rows": rows, "cases": cases}
