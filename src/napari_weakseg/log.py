"""Logging: the ``napari_weakseg`` logger, the command line's verbosity, and each run's own ``train.log``.

The CLI prints what it does on stderr through this logger (``-q`` leaves warnings and errors only, ``-v`` adds
debug detail); every training run also writes ``RUN/train.log`` (timestamps, its settings, validations,
checkpoints, the end or the failure with its traceback), whoever started it: the dock, the CLI, a benchmark.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

LOGGER = logging.getLogger("napari_weakseg")
RUN_LOG = "train.log"
RUN_ONLY = {"run_log_only": True}  # a record for train.log, not the console (the CLI prints its own line)


def configure_cli(verbose: int = 0, quiet: bool = False) -> None:
    """Messages of the ``weakseg`` command on stderr, one line each: INFO by default, WARNING with ``quiet``,
    DEBUG with ``verbose``. Called once per command."""
    for h in [h for h in LOGGER.handlers if getattr(h, "_weakseg_cli", False)]:
        LOGGER.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler._weakseg_cli = True
    handler.addFilter(lambda record: not getattr(record, "run_log_only", False))  # the CLI says those its own way
    handler.setLevel(logging.WARNING if quiet else logging.DEBUG if verbose else logging.INFO)
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)  # each handler filters: the console as asked, a run's log everything
    LOGGER.propagate = False


@contextlib.contextmanager
def run_log(run_dir: str | Path, enabled: bool = True):
    """Everything logged under ``napari_weakseg`` during the block also goes to ``run_dir/train.log`` (appended:
    a resumed run continues its log), with timestamps, at DEBUG."""
    if not enabled:
        yield
        return
    handler = logging.FileHandler(Path(run_dir) / RUN_LOG, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    level = LOGGER.level
    LOGGER.addHandler(handler)
    LOGGER.setLevel(logging.DEBUG)  # other handlers keep their own levels (the CLI's console)
    try:
        yield
    finally:
        LOGGER.removeHandler(handler)
        handler.close()
        LOGGER.setLevel(level)


def log_event(event) -> None:
    """A training event as a log line (progress at every tenth of the run, checkpoints at DEBUG)."""
    from .training.events import Checkpointed, Failed, Finished, Progress, Started, Validated, kept_note

    if isinstance(event, Started):
        LOGGER.info(
            f"training {event.method} on {event.device}: {event.train_slices} training / {event.val_slices} validation "
            f"slices, {event.total_steps} steps"
            + (f", resumed at step {event.resumed_from}" if event.resumed_from else "")
            + f"; {event.note}"
        )
    elif isinstance(event, Progress) and (event.step * 10 // event.total_steps) != ((event.step - 1) * 10 // event.total_steps):
        losses = " ".join(f"{k}={v:.4g}" for k, v in event.losses.items())
        LOGGER.debug(f"step {event.step}/{event.total_steps} {losses} · {event.pairs_per_s:.1f} pairs/s · ETA {event.eta_s:.0f} s")
    elif isinstance(event, Validated):
        what = "validation" if event.on == "validation" else "fit to the annotated slices"
        LOGGER.info(f"{what} at step {event.step}: Dice {event.dice:.4f} (best {event.best_dice:.4f})")
    elif isinstance(event, Checkpointed):
        LOGGER.debug(f"checkpoint at step {event.step}: {event.path}")
    elif isinstance(event, Finished):
        best = f", best validation Dice {event.best_dice:.4f}" if event.best_dice is not None else ""
        kept = f"; {kept_note(event)}" if kept_note(event) else ""
        LOGGER.info(f"{event.reason} at step {event.step}{best}{kept}", extra=RUN_ONLY)
    elif isinstance(event, Failed):  # the traceback goes to train.log; the console gets the CLI's one-line error
        LOGGER.error(f"failed: {event.message}" + (f"\n{event.details}" if event.details else ""), extra=RUN_ONLY)
