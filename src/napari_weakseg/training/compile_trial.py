"""A trial of the compiled training step in a throwaway process, before a run compiles its own.

Why: on an AMD EPYC (torch 2.13, CPU build) inductor's compiled backward of seg-only killed the process
("Fatal Python error: Aborted" inside an aten op the compiled graph calls; session 18 and its CI). An abort is
no exception: ``StepRunner``'s eager fallback never ran, and the CLI, the benchmark or the dock's training
process died with it. So a run asked to compile (``--compile on``) on a CPU first runs two compiled steps of its
own method, weights and first batch in a child process (``python -m napari_weakseg.training.compile_trial``;
a subprocess, since the dock's training process is a daemon and may not fork multiprocessing children). Only
when the child ends cleanly does the run compile in-process (what the trial compiled is in inductor's on-disk
cache, so the run's own compile is mostly cache hits); otherwise it trains eagerly with a one-line note and
keeps the child's output as ``compile-trial.log`` in the run folder.

The job goes to the child as tensors and JSON only (``RUN/compile-trial/``, through the checkpoints' own
``save_tensors`` / ``load_tensors``: loaded with ``weights_only``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from ..atomic import write_json_atomic
from .checkpoint import load_tensors, save_tensors

TRIAL_DIR = "compile-trial"
TRIAL_LOG = "compile-trial.log"
TRIAL_STEPS = 2
PREPARE_ROWS = 8  # ``Method.prepare`` sees this many of the training rows in the trial (none needs more today)


def write_job(folder: Path, method: str, config, state: dict, slices, pixel_mm, aux, batch: dict, precision: str, threads: int):
    """The trial's inputs in ``folder``: ``job.json`` (method, its config, precision, threads, pixel size) and
    ``job.pt`` (tensors: the weights before the first step, the first batch, ``aux`` (N, 1, H, W) or none, and
    the first ``PREPARE_ROWS`` training rows for ``Method.prepare``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = slices.subset(range(min(len(slices), PREPARE_ROWS)))
    tensors = {
        "model": state,
        "batch": {k: v.detach().cpu() for k, v in batch.items()},
        "slices": {"images": rows.images, "masks": rows.masks, "presence": rows.presence, "annotated": rows.annotated, "half": rows.half},
        "source": [list(s) for s in rows.source],
    }
    if aux is not None:
        tensors["aux"] = aux
    save_tensors(folder / "job.pt", tensors)
    info = {"method": method, "config": config.to_dict(), "pixel_mm": pixel_mm, "precision": precision, "threads": threads}
    write_json_atomic(folder / "job.json", info)


def compiled_steps(folder: Path, steps: int = TRIAL_STEPS) -> None:
    """The child's work: ``steps`` compiled steps on the CPU of the job in ``folder``, each phase forward,
    backward and the optimiser's step."""
    from ..data.slices import SliceSet
    from ..methods import MethodConfig, build_method
    from .step_speed import StepRunner

    info = json.loads((folder / "job.json").read_text())
    job = load_tensors(folder / "job.pt")
    torch.set_num_threads(info["threads"])
    method = build_method(info["method"], MethodConfig.from_dict(info["config"]))
    method.load_state_dict(job["model"])
    rows = SliceSet(**job["slices"], source=[tuple(s) for s in job["source"]])
    method.prepare(rows, info["pixel_mm"], job.get("aux"))
    optimizers = method.make_optimizers()
    runner = StepRunner(method, method.phases, info["precision"], torch.device("cpu"), compile_model=True)
    method.train()
    for _ in range(steps):
        for phase in method.phases:
            runner.phase(phase, job["batch"], optimizers[phase])
        method.after_step()


def ended(code: int) -> str:
    """How a child with exit status ``code`` ended: '' (cleanly), "died of SIGABRT", "exited with code 1"."""
    if code == 0:
        return ""
    if code < 0:
        try:
            return f"died of {signal.Signals(-code).name}"
        except ValueError:
            return f"died of signal {-code}"
    return f"exited with code {code}"


def run_child(args: list[str], log_path: Path, should_stop: Callable[[], bool] = lambda: False) -> str:
    """Run ``python args...`` with its output to ``log_path``; how it ended (``ended``), or "was stopped"."""
    with open(log_path, "wb") as log:
        process = subprocess.Popen([sys.executable, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            while process.poll() is None:
                if should_stop():
                    return "was stopped"
                time.sleep(0.2)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    return ended(process.returncode)


def compile_trial(run_dir: Path, should_stop: Callable[[], bool] = lambda: False, **job) -> str:
    """'' when ``TRIAL_STEPS`` compiled steps of the job (``write_job``'s arguments) ran in a child process;
    else the run's note (it trains eagerly)."""
    run_dir = Path(run_dir)
    folder, log = run_dir / TRIAL_DIR, run_dir / TRIAL_LOG
    try:
        write_job(folder, **job)
        why = run_child(["-m", __name__, str(folder), str(os.getpid())], log, should_stop)
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # made here, for the child only
    if why in ("", "was stopped"):
        log.unlink(missing_ok=True)
    if why == "was stopped":
        return "compile: the trial of the compiled step was stopped; training eagerly"
    return why and f"compile: a trial compiled step {why} in a separate process (its output: {TRIAL_LOG}); training eagerly"


def exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this process when ``parent`` does (a dock's training process that was killed): a daemon thread."""
    import threading

    def watch():
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="exit-with-parent").start()


if __name__ == "__main__":  # python -m napari_weakseg.training.compile_trial FOLDER PARENT_PID
    exit_with_parent(int(sys.argv[2]))
    compiled_steps(Path(sys.argv[1]))
