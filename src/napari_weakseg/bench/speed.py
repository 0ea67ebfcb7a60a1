"""The speed suite: training throughput per method, achieved FLOP/s against the machine's own
matmul FLOP/s (measured in the same run), peak memory, inference time per slice and per
240x240x155 volume, and (``gui_speed.py``) the viewer while it trains.

Every training run here is a real ``weakseg train`` process on the demo phantom study;
throughput comes from the run's own ``metrics.jsonl`` (steps and wall time).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError
from ..log import LOGGER
from ..methods import METHODS
from .headless import train_headless

# the A/B table: today's eager fp32 step against the faster ways to run the same step (training.step_speed)
VARIANTS = {
    "eager fp32": {"precision": "fp32", "compile": "off"},
    "eager bf16": {"precision": "bf16", "compile": "off"},
    "compiled fp32": {"precision": "fp32", "compile": "on"},
    "compiled bf16": {"precision": "bf16", "compile": "on"},
}


@dataclass
class SpeedProfile:
    steps: int  # training steps per method (throughput)
    volume: tuple[int, int, int]  # (Z, Y, X) of the inference volume
    channels: int
    gui_steps: int | None  # steps of the GUI run (None: the dock's default)
    repeats: int  # headless / GUI pairs, interleaved; medians reported
    ab_steps: int = 60  # steps of each A/B run (eager fp32 against bf16 and compiled steps)
    ab_repeats: int = 1  # rounds of the A/B variants, interleaved
    ab_variants: tuple[str, ...] = tuple(VARIANTS)  # (tests: fewer)
    compile_limit_s: float | None = None  # a compiled variant gets this long (None: no limit); past it, measured as such
    dice_seeds: tuple[int, ...] = (0, 1, 2)  # genseg, eager fp32 against bf16: does it cost Dice? (): not measured
    dice_steps: int | None = None  # steps of those runs (None: the dock's default)
    dice_variants: tuple[str, ...] = ("eager fp32", "eager bf16")


PROFILES = {
    # on 2 cores inductor compiled genseg's step for over 5 min without a first step (session 8): time-boxed
    "cpu": SpeedProfile(steps=60, volume=(155, 240, 240), channels=2, gui_steps=None, repeats=2, compile_limit_s=300),
    "gpu": SpeedProfile(steps=200, volume=(155, 240, 240), channels=2, gui_steps=None, repeats=2),
}


def run_speed_suite(
    out: Path,
    profile: str | SpeedProfile = "cpu",
    methods: tuple[str, ...] | None = None,
    device: str = "auto",
    gui: bool = True,
    steps: int | None = None,
    log=LOGGER.info,
    work: Path | None = None,
) -> dict:
    from ..demo import build_demo_study
    from ..study.folder import check_new_folder
    from ..training.trainer import resolve_device
    from .common import resolve_profile, results_header

    prof, profile = resolve_profile(profile, PROFILES, SpeedProfile)
    if gui and sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError("no display for the measurements in napari: run under `xvfb-run -a`, or pass --no-gui")
    methods = tuple(methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise InputError(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    steps = steps or prof.steps
    dev = resolve_device(device)
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(work) if work else out / "work"
    study = work / "study"
    if not (study / "study.json").is_file():
        check_new_folder(study)
        build_demo_study(study)
    results = {
        **results_header("speed", profile, dev),
        "steps": steps,
        "methods": list(methods),
        "study": "demo phantom (2 channels, 32x96x96, 3 annotated slices), quick preset",
        "training": {},
        "inference": {},
    }
    for method in methods:
        log(f"[speed] training {method} ({steps} steps)")
        run = train_headless(
            study, work / "runs" / f"{method}-headless", {"method": method, "steps": steps, "device": str(dev), "val_fraction": 0.0}
        )
        run["step_flops"] = step_flops(study, method, str(dev))
        run["achieved_flops_per_s"] = run["step_flops"] * run["steps_per_s"]
        results["training"][method] = run
        log(f"[speed] inference {method} on a {prof.channels}x{'x'.join(map(str, prof.volume))} volume")
        results["inference"][method] = time_inference(run["run_dir"], prof.volume, prof.channels, str(dev))
        _save(results, out)
    results["ab"] = measure_variants(
        study, work / "ab", methods, str(dev), prof.ab_steps, prof.ab_repeats, log, prof.ab_variants, prof.compile_limit_s
    )
    _save(results, out)
    if prof.dice_seeds and "genseg" in methods:
        from ..training.dock_defaults import DEFAULT_STEPS

        dice_steps = prof.dice_steps or DEFAULT_STEPS
        results["ab_dice"] = measure_variant_dice(
            study, work / "ab-dice", "genseg", str(dev), dice_steps, prof.dice_seeds, prof.dice_variants, log
        )
        _save(results, out)
    if gui:
        from .gui_speed import measure_gui_vs_headless

        results["gui"] = measure_gui_vs_headless(study, work / "gui", prof.gui_steps, prof.repeats, log=log)
    else:
        results["gui"] = {"skipped": "--no-gui was given"}
    results["total_seconds"] = time.perf_counter() - t_start
    _save(results, out)
    from .speed_report import write_speed_report

    write_speed_report(results, out)
    return results


def runnable_variants(names, device: str) -> tuple[bool, list[str]]:
    """(whether the device has bf16 units, the VARIANTS of ``names`` it can run: bf16 ones only with them)."""
    from ..training.step_speed import has_bf16_units

    bf16 = has_bf16_units(torch.device(device))
    return bf16, [k for k in names if bf16 or VARIANTS[k]["precision"] != "bf16"]


def measure_variants(
    study: Path,
    work: Path,
    methods,
    device: str,
    steps: int,
    repeats: int,
    log=LOGGER.info,
    names=tuple(VARIANTS),
    compile_limit_s: float | None = None,
) -> dict:
    """{method: {variant: run}}: each method's step in every VARIANTS entry the device can run, as ``weakseg
    train`` processes, interleaved (variant after variant, ``repeats`` rounds; the fastest round kept, the
    others' figures alongside). ``first_step_s`` minus eager fp32's is the compile time. A compiled variant
    still without its end after ``compile_limit_s`` is stopped and recorded as ``{"timed_out_s": ...}``."""
    bf16, runnable = runnable_variants(names, device)
    variants = {k: VARIANTS[k] for k in runnable}
    table: dict = {m: {} for m in methods}
    for r in range(repeats):
        for method in methods:
            for name, v in variants.items():
                log(f"[speed] A/B {method}: {name} ({steps} steps)")
                cfg = {"method": method, "steps": steps, "device": device, "val_fraction": 0.0, **v}
                limit = compile_limit_s if v["compile"] == "on" else None
                run = train_headless(study, work / f"{method}-{name.replace(' ', '-')}-{r}", cfg, timeout_s=limit)
                if "timed_out_s" in run:
                    log(f"[speed] A/B {method}: {name} stopped after {limit:.0f} s (compiling)")
                    table[method].setdefault(name, run)
                    continue
                best = table[method].get(name)
                if best is not None and "timed_out_s" in best:
                    best = None
                if best is None or run["pairs_per_s"] > best["pairs_per_s"]:
                    run["rounds_pairs_per_s"] = [*(best or {}).get("rounds_pairs_per_s", []), run["pairs_per_s"]]
                    table[method][name] = run
                else:
                    best["rounds_pairs_per_s"].append(run["pairs_per_s"])
    for method in methods:
        flops = step_flops(study, method, device)
        for run in table[method].values():
            if "timed_out_s" not in run:
                run["step_flops"] = flops
                run["achieved_flops_per_s"] = flops * run["steps_per_s"]
    return {"steps": steps, "repeats": repeats, "bf16_units": bf16, "variants": list(variants), "methods": table}


def measure_variant_dice(study: Path, work: Path, method: str, device: str, steps: int, seeds, names, log=LOGGER.info) -> dict:
    """{variant: {"dice": [one per seed], "mean", "sd"}}: the demo phantom's truth against ``method``'s
    segmentation (the dock's threshold) after ``steps`` steps in each variant the device can run, seeds
    interleaved. Whether a faster way of running the step costs Dice, beside the seeds' own spread."""
    from ..data.phantom import make_phantom
    from ..inference import TrainedModel
    from ..study import load_study
    from ..training.dock_defaults import DEFAULT_THRESHOLD
    from ..training.metrics import dice

    names = runnable_variants(names, device)[1]
    image, truth = load_study(study).images[0], make_phantom(channels=2, seed=0).mask  # the demo study's phantom
    table: dict = {k: {"dice": []} for k in names}
    for seed in seeds:
        for name in names:
            log(f"[speed] Dice {method}: {name}, seed {seed} ({steps} steps)")
            run_dir = work / f"{method}-{name.replace(' ', '-')}-seed{seed}"
            cfg = {"method": method, "steps": steps, "device": device, "val_fraction": 0.0, "seed": seed, **VARIANTS[name]}
            train_headless(study, run_dir, cfg)
            prob = TrainedModel.load(run_dir, device=device).predict_image(image)["prob"]
            table[name]["dice"].append(dice(prob >= DEFAULT_THRESHOLD, truth))
    for row in table.values():
        row["mean"], row["sd"] = float(np.mean(row["dice"])), float(np.std(row["dice"]))
    return {"method": method, "steps": steps, "seeds": list(seeds), "variants": table}


def _save(results: dict, out: Path) -> None:
    from .common import save_results

    save_results(results, out)


def step_flops(study: Path, method: str, device: str) -> int:
    """FLOPs of one training step of ``method`` (quick preset) on a real batch of the study."""
    import tempfile

    from ..data.slices import PairSampler
    from ..study import load_study
    from ..training.trainer import TrainConfig, Trainer
    from .hardware import training_step_flops

    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(load_study(study), tmp, TrainConfig(method=method, steps=1, device=device, val_fraction=0.0))
        mc = trainer.method_config
        sampler = PairSampler(trainer.train_set, mc.batch_size, mc.annotated_per_batch, trainer.method_cls.sampling, seed=0)
        batch = trainer.sample_batch(sampler, torch.Generator().manual_seed(0))
        from ..data.shape_prior import provide_aux
        from ..methods import build_method

        m = build_method(method, mc).to(trainer.device).train()
        provide_aux(m, tuple(batch["P"].shape[-2:]), trainer.pixel_mm)  # what prepare() gets, without its pre-training
        return training_step_flops(m, batch)


def time_inference(run_dir: str | Path, shape: tuple[int, int, int], channels: int, device: str, repeats: int = 3) -> dict:
    """Seconds to predict a whole (channels, Z, Y, X) volume (median of ``repeats``) and one slice."""
    from ..inference import TrainedModel

    model = TrainedModel.load(run_dir, which="last", device=device)
    vol = np.random.default_rng(0).normal(size=(channels, *shape)).astype(np.float32)
    model.predict_volume(vol[:, :4])  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        model.predict_volume(vol)
        times.append(time.perf_counter() - t)
    one = []
    for i in range(10):
        t = time.perf_counter()
        model.predict_volume(vol[:, i : i + 1])
        one.append(time.perf_counter() - t)
    return {
        "volume_shape": [channels, *shape],
        "volume_s": statistics.median(times),
        "volume_s_all": times,
        "slice_s": statistics.median(one),
        "slice_s_in_volume": statistics.median(times) / shape[0],
    }
