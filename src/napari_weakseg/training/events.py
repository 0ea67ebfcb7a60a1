"""What the Trainer tells its caller (GUI, CLI, benchmarks). Each event is also a JSON line in metrics.jsonl."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class Event:
    kind = "event"

    def to_json(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "outputs"}
        return {"event": self.kind, **d}


@dataclass
class Started(Event):
    kind = "started"
    method: str
    device: str
    total_steps: int
    train_slices: int
    val_slices: int
    world_size: int = 1
    resumed_from: int = 0
    note: str = ""


@dataclass
class Progress(Event):
    kind = "progress"
    step: int
    total_steps: int
    epoch: int
    losses: dict
    pairs_per_s: float
    eta_s: float
    elapsed_s: float = 0.0  # wall time since this run (or resumption) started
    cpu_share: float | None = None  # CPU time / wall time per thread of late (training.pace; low: starved of CPU)


@dataclass
class Validated(Event):
    kind = "validated"
    step: int
    dice: float
    best_dice: float
    improved: bool
    on: str = "validation"  # validation: held-out slices; annotated: the training slices (no validation split)


@dataclass
class Preview(Event):
    """Outputs for one requested slice, each (C or 1, H, W) on the slice's own grid (numpy)."""

    kind = "preview"
    step: int
    image: int
    slice: int
    outputs: dict = field(default_factory=dict)


@dataclass
class Checkpointed(Event):
    kind = "checkpoint"
    step: int
    path: str
    best: bool


@dataclass
class Finished(Event):
    kind = "finished"
    step: int
    reason: str  # completed | stopped | early-stopped
    best_dice: float | None
    run_dir: str
    peak_memory_mb: float | None = None  # CUDA: peak allocated; CPU: the process's peak resident set
    fit_dice: float | None = None  # no validation split: best.pt's Dice on the annotated training slices
    fit_step: int | None = None  # ... and its step (0 for a warm start that training never bettered)
    note: str = ""  # what changed how the run trained after it started (a compile that fell back to eager)


def kept_note(event: Finished) -> str:
    """What the dock and the CLI say when best.pt is not the last step because an earlier one fitted the
    annotated slices better (no validation split; ``TrainConfig.keep_best_fit``); "" otherwise."""
    if event.fit_step is None or event.fit_step == event.step:
        return ""
    if event.fit_step == 0:
        return (
            f"training fitted your annotated slices worse than the model it started from (Dice {event.fit_dice:.3f} "
            "at the start), so this run keeps the starting weights"
        )
    return f"the weights of step {event.fit_step} fitted your annotated slices best (Dice {event.fit_dice:.3f}) and are kept"


@dataclass
class Failed(Event):
    kind = "failed"
    message: str
    details: str = ""


def read_event_lines(path) -> list[dict]:
    """The events of a run's metrics.jsonl, safe to call while the run is appending to it: a last line
    still being written (no newline yet, or not yet valid JSON) is left for the next read."""
    path = Path(path)
    if not path.is_file():
        return []
    text = path.read_text()
    complete = text[: text.rfind("\n") + 1]
    events = []
    for line in complete.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:  # a torn line (a crash mid-write): skipped
            continue
    return events
