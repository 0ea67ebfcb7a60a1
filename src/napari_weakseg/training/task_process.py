"""*Run model* and *Refine* in a separate process, as training runs (no Qt here).

On a GPU, a model run inside napari's process leaves a CUDA context (hundreds of MB, until the viewer closes)
in it: the memory complaint of napari training plugins. In a spawned process the context goes with the
process. The docks call :func:`run_task` from their worker thread, so the viewer never waits; the task sends
back log lines, progress and its result (plain data: numpy arrays, dicts) through a queue. ``stop`` ends the
process; what it writes is written atomically, so a stopped task leaves nothing half-written.
"""

from __future__ import annotations

import multiprocessing as mp
import queue
import time
import traceback
from collections.abc import Callable

from ..errors import WeaksegError


def wants_separate_process(device: str) -> bool:
    """The default: a separate process for a GPU (its context leaves with the process); on a CPU the viewer's
    own worker thread, which spares the process start (a few seconds of imports) and holds no device memory."""
    return not str(device).startswith("cpu")


def predict_task(run_dir: str, volume, axis: int, split, lesion_samples: bool, device: str, report) -> tuple[dict, dict]:
    """(run info, outputs) of *Run model*: ``TrainedModel.predict_volume`` on volume (C, Z, Y, X)."""
    from ..inference import TrainedModel

    report("progress", 0, 1)
    model = TrainedModel.load(run_dir, device=device)
    outputs = model.predict_volume(volume, axis=axis, lesion_samples=lesion_samples, split=split)
    report("progress", 1, 1)
    return model.info, outputs


def refine_task(run_dir: str, study_folder: str, device: str, report) -> dict:
    """*Refine* of a pseudo-label run (``pseudo.refine.refine_run``) on the saved study: its best round and
    the rounds' validation Dice."""
    from ..pseudo.refine import refine_run
    from ..study import load_study

    def on_round(k: int, n: int) -> None:
        report("progress", k, n)

    def log(message: str) -> None:
        report("log", message)

    _, result = refine_run(run_dir, load_study(study_folder), which="best", device=device, log=log, on_round=on_round)
    return {"best_round": result.best_round, "rounds": len(result.history), "val_dice": [r.val_dice for r in result.history]}


TASKS = {"predict": predict_task, "refine": refine_task}


def _task_main(name: str, kwargs: dict, messages: mp.Queue) -> None:
    def report(kind, *args):
        messages.put((kind, *args))

    try:
        messages.put(("result", TASKS[name](**kwargs, report=report)))
    except WeaksegError as exc:
        messages.put(("error", str(exc), ""))
    except Exception as exc:  # reported to the dock, never lost
        messages.put(("error", f"{type(exc).__name__}: {exc}", traceback.format_exc()))


def run_task(
    name: str,
    kwargs: dict,
    on_log: Callable[[str], None] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
):
    """Run task ``name`` of ``TASKS`` with ``kwargs`` in a spawned process and wait for it (call it from a worker
    thread); log lines and progress go to the callbacks. Returns the task's result; a WeaksegError with the task's
    message if it failed or the process died; None when ``should_stop()`` became true (the process is ended)."""
    from .worker import main_module_hidden

    ctx = mp.get_context("spawn")
    messages = ctx.Queue()
    process = ctx.Process(target=_task_main, args=(name, kwargs, messages), name=f"weakseg-{name}", daemon=True)
    with main_module_hidden():
        process.start()
    try:
        while True:
            if should_stop():
                return None
            try:
                kind, *args = messages.get(timeout=0.1)
            except queue.Empty:
                if not process.is_alive() and messages.empty():
                    time.sleep(0.2)  # a last message may still be in the pipe
                    if messages.empty():
                        raise WeaksegError(f"the {name} process ended unexpectedly (exit code {process.exitcode})") from None
                continue
            if kind == "result":
                return args[0]
            if kind == "error":
                raise WeaksegError(args[0])
            if kind == "log" and on_log:
                on_log(args[0])
            if kind == "progress" and on_progress:
                on_progress(*args)
    finally:
        if process.is_alive():
            process.kill()
        process.join(5)
