"""Plumbing every benchmark suite shares: profiles, the results header (machine, matmul FLOP/s, the
command), and reading / writing ``results.json``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..errors import InputError


def resolve_profile(profile, profiles: dict, cls: type | None = None) -> tuple[object, str]:
    """(the profile object, its name): a named profile of ``profiles``, or a ``cls`` instance ("custom":
    tests, experiments). An unknown name is an InputError."""
    if cls is not None and isinstance(profile, cls):
        return profile, "custom"
    if profile in profiles:
        return profiles[profile], profile
    raise InputError(f"unknown profile {profile!r}; use {' or '.join(profiles)}")


def command_line() -> str | None:
    """The ``weakseg ...`` command this process runs, if it is one."""
    return " ".join(["weakseg", *sys.argv[1:]]) if sys.argv and "weakseg" in sys.argv[0] else None


def results_header(suite: str, profile: str, device) -> dict:
    """The start of every suite's results: the machine and its own dense matmul FLOP/s, measured now."""
    from .hardware import machine_description, matmul_flops_per_s

    return {
        "suite": suite,
        "profile": profile,
        "machine": machine_description(device),
        "matmul_flops_per_s": matmul_flops_per_s(device),
        "command": command_line(),
    }


def save_results(results: dict, out: Path) -> Path:
    path = Path(out) / "results.json"
    path.write_text(json.dumps(results, indent=1))
    return path


def load_results(out: Path) -> dict:
    path = Path(out) / "results.json"
    if not path.is_file():
        raise InputError(f"{path}: no results to report; run the suite first")
    return json.loads(path.read_text())


def load_suite_results(out: Path, suite: str) -> dict:
    """``OUT/results.json`` of ``suite`` (for --report-only); another suite's results are an InputError."""
    results = load_results(out)
    if results.get("suite") != suite:
        raise InputError(f"{out}/results.json holds the {results.get('suite')} suite, not {suite}")
    return results


class StepTimer:
    """A Trainer ``on_event`` callback that times every training step (the gap between Progress events)."""

    def __init__(self):
        import time

        self._clock = time.perf_counter
        self.step_times: list[float] = []
        self._last = self._clock()

    def __call__(self, event) -> None:
        from ..training.events import Progress

        if isinstance(event, Progress):
            now = self._clock()
            self.step_times.append(now - self._last)
            self._last = now

    def median_step_s(self) -> float:
        """Median step time after the first 20 % of steps (warm-up); nan without steps."""
        import statistics

        times = self.step_times[len(self.step_times) // 5 :]
        return statistics.median(times) if times else float("nan")


LAST_CHECKPOINT = {"val_fraction": 0.0, "keep_best_fit": False}  # no validation split, the last step is what is scored


def train_run(study, run_dir: Path, method: str, prof, steps: int, seed: int, dev, **config) -> tuple[object, object, StepTimer, float]:
    """One training run of a suite, the way every suite runs it: a fresh ``run_dir``, the profile's preset and
    method-config overrides (``prof.preset``, ``prof.overrides``), one checkpoint at the end, the step times
    recorded. ``config``: further TrainConfig fields (the validation rule, overrides of the overrides).
    Returns (the Finished event, the Trainer, its StepTimer, wall seconds); a failed run is a RuntimeError
    with the traceback (a suite's result never hides one)."""
    import shutil
    import time

    from ..training.events import Failed
    from ..training.trainer import TrainConfig, Trainer

    shutil.rmtree(run_dir, ignore_errors=True)
    config.setdefault("overrides", prof.overrides)
    cfg = TrainConfig(method=method, preset=prof.preset, steps=steps, device=str(dev), seed=seed, checkpoint_every=max(steps, 1), **config)
    timer = StepTimer()
    trainer = Trainer(study, run_dir, cfg, on_event=timer)
    t0 = time.perf_counter()
    result = trainer.run()
    wall = time.perf_counter() - t0
    if isinstance(result, Failed):
        raise RuntimeError(f"{method} failed: {result.message}\n{result.details}")
    return result, trainer, timer, wall
