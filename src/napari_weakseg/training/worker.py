"""Training in a separate process, for the GUI (no Qt here).

Why a process and not a thread: the networks are small, so much of a training
step is Python work that holds the GIL; in a thread that would steal time from
napari's event loop (stutter while painting). A process also hands all GPU
memory back to the system when it ends, and a crash in it cannot take the viewer
down. Events come back through a queue as plain data.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import queue
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .events import Event


@dataclass
class JobSpec:
    """What the training process needs: the study on disk, the run folder and the configs."""

    study_folder: str
    run_dir: str
    config: dict  # TrainConfig fields
    resume: bool = False
    init_weights: str | None = None
    started_from: str | None = None  # the run this one continues (recorded in its run.json)
    threads: int | None = None  # torch threads in the worker (None: the run's config, by default the cores free at start)
    preview: tuple[int, int] | None = None  # (image, slice) previewed every ``preview_every`` steps
    preview_every: int = 25
    nice: int = 10  # lower the worker's CPU priority so napari's event loop wins the cores when it needs them


def _worker_main(spec: JobSpec, events: mp.Queue, stop: mp.Event, previews: mp.Queue) -> None:

    from ..study import load_study
    from .events import Failed, Progress
    from .trainer import TrainConfig, Trainer

    if spec.threads:
        spec.config = {**spec.config, "threads": spec.threads}
    if spec.nice and hasattr(os, "nice"):
        os.nice(spec.nice)  # training uses every idle cycle; the viewer gets the CPU first when it has work
    preview = list(spec.preview) if spec.preview else None

    def on_event(event: Event) -> None:
        nonlocal preview
        events.put(event)
        try:  # the GUI may move the preview to another slice
            while True:
                preview = list(previews.get_nowait())
        except queue.Empty:
            pass
        if isinstance(event, Progress):
            if stop.is_set():
                trainer.stop()
            elif preview is not None and event.step % spec.preview_every == 0:
                trainer.request_preview(*preview)

    try:
        study = load_study(spec.study_folder)
        trainer = Trainer(
            study,
            spec.run_dir,
            TrainConfig(**spec.config),
            on_event=on_event,
            resume=spec.resume,
            init_weights=spec.init_weights,
            started_from=spec.started_from,
        )
    except Exception as exc:  # before the loop: report it like any other failure
        events.put(Failed(str(exc)))
        return
    if stop.is_set():
        trainer.stop()
    trainer.run()


@contextlib.contextmanager
def main_module_hidden():
    """Keep a spawned child from re-running the parent's main script.

    ``spawn`` re-imports ``__main__`` in the child, which runs any script that
    opened napari without an ``if __name__ == "__main__":`` guard a second time
    (a second viewer, a second study...). The worker needs nothing from
    ``__main__``, so the child is told there is none.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__.pop(k) for k in ("__file__",) if main is not None and k in main.__dict__}
    spec = getattr(main, "__spec__", None)
    if main is not None and spec is not None:
        main.__spec__ = None
    try:
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)
            if spec is not None:
                main.__spec__ = spec


@dataclass
class TrainingProcess:
    """Start, poll and stop one training process."""

    spec: JobSpec
    _ctx: object = field(default_factory=lambda: mp.get_context("spawn"))

    def __post_init__(self):
        self.events = self._ctx.Queue()
        self.previews = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self.process = self._ctx.Process(
            target=_worker_main, args=(self.spec, self.events, self._stop, self.previews), name="weakseg-training", daemon=True
        )

    def start(self) -> None:
        Path(self.spec.run_dir).mkdir(parents=True, exist_ok=True)
        with main_module_hidden():
            self.process.start()

    def stop(self) -> None:
        """Ask for a clean stop: the run finishes its step, saves a checkpoint and exits."""
        self._stop.set()

    def set_preview(self, image: int, slice_index: int) -> None:
        self.previews.put((int(image), int(slice_index)))

    def poll(self, limit: int = 200) -> list[Event]:
        """Events that arrived since the last call (non-blocking)."""
        out = []
        for _ in range(limit):
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                break
        return out

    @property
    def alive(self) -> bool:
        return self.process.is_alive()

    def join(self, timeout: float | None = None) -> None:
        self.process.join(timeout)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
            self.process.join(5)
