"""A ``weakseg train`` run as its own process, exactly what a user runs, and its throughput read back from
its metrics (used by the speed suite and by its GUI measurements)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from ..errors import WeaksegError

WARMUP_STEPS = 5  # left out of throughput figures (allocations, first-call overheads)


def train_config_args(config: dict) -> list[str]:
    """``weakseg train`` arguments for a TrainConfig-like dict (method, preset, steps, device, seed, val_fraction, overrides)."""
    args = [
        "--method",
        config["method"],
        "--preset",
        config.get("preset", "quick"),
        "--steps",
        str(config["steps"]),
        "--device",
        config.get("device", "auto"),
        "--seed",
        str(config.get("seed", 0)),
        "--val-fraction",
        str(config.get("val_fraction", 0.2)),
    ]
    for key in ("precision", "compile"):  # auto when not given, as weakseg train
        if key in config:
            args += [f"--{key}", str(config[key])]
    return args


def train_headless(study: Path, run_dir: Path, config: dict, timeout_s: float | None = None) -> dict:
    """Run ``weakseg train`` as its own process (exactly what a user runs) and read its figures back. With
    ``timeout_s``, a run still going then is stopped: {"timed_out_s": timeout_s, "run_dir", "command"}."""
    import shutil

    shutil.rmtree(run_dir, ignore_errors=True)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "napari_weakseg.cli", "train", str(study), "--out", str(run_dir), *train_config_args(config)]
    if config.get("overrides"):
        cfg_file = run_dir.parent / f"{run_dir.name}-config.json"
        cfg_file.write_text(json.dumps(config["overrides"]))
        cmd += ["--config", str(cfg_file)]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:  # subprocess.run kills the process
        return {"timed_out_s": timeout_s, "run_dir": str(run_dir), "command": " ".join(["weakseg", *cmd[3:]])}
    wall = time.perf_counter() - t0
    stderr = proc.stderr
    if proc.returncode != 0:
        raise WeaksegError(
            f"weakseg train {config['method']} failed: {stderr.strip().splitlines()[-1] if stderr.strip() else proc.returncode}"
        )
    run = throughput_from_metrics(run_dir / "metrics.jsonl")
    run.update(wall_s=wall, run_dir=str(run_dir), command=" ".join(["weakseg", *cmd[3:]]))
    return run


def throughput_from_metrics(metrics_file: Path) -> dict:
    """Steps/s and slice pairs/s of a run, from its progress events (warm-up steps left out)."""
    from ..training.events import read_event_lines

    progress, started, finished = [], None, None
    for e in read_event_lines(metrics_file):
        if e["event"] == "progress":
            progress.append(e)
        elif e["event"] == "started":
            started = e
        elif e["event"] == "finished":
            finished = e
    if len(progress) <= WARMUP_STEPS + 1:
        raise WeaksegError(f"{metrics_file}: too few steps ({len(progress)}) to measure throughput")
    info = json.loads((Path(metrics_file).parent / "run.json").read_text())
    batch = info["method_config"]["batch_size"]
    first, last = progress[WARMUP_STEPS], progress[-1]
    steps_per_s = (last["step"] - first["step"]) / max(last["elapsed_s"] - first["elapsed_s"], 1e-9)
    return {
        "first_step_s": progress[0]["elapsed_s"],  # the loop's start to its first step: a compiler's time shows here
        "runtime": info.get("runtime", {}),
        "steps": last["step"],
        "batch_size": batch,
        "steps_per_s": steps_per_s,
        "pairs_per_s": steps_per_s * batch,
        "device": started["device"] if started else None,
        "peak_memory_mb": finished.get("peak_memory_mb") if finished else None,
    }
