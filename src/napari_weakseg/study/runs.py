"""The training runs a study folder holds (``STUDY/runs/<run>/``), and carrying them along when the study
is saved somewhere else ("Save as"): a study's models must never be left behind or deleted with it."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import InputError
from ..locks import holder, in_use

RUNS = "runs"


def study_runs(folder: str | Path) -> list[Path]:
    """The run folders (holding a run.json) of the study ``folder``, oldest first (by name: method-date)."""
    base = Path(folder) / RUNS
    if not base.is_dir() or base.is_symlink():
        return []
    return sorted(p for p in base.iterdir() if p.is_dir() and not p.is_symlink() and (p / "run.json").is_file())


def check_runs_idle(folder: str | Path) -> None:
    """InputError when a run of the study is being written (training, or another program) now."""
    base = Path(folder) / RUNS
    for run in sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []:
        if in_use(run):
            raise InputError(f"{run} is in use by {holder(run)}; stop the training or wait for it before saving the study elsewhere")


def carry_runs(old: str | Path, new: str | Path, move: bool) -> list[Path]:
    """Bring ``old``'s run folders into the study folder ``new`` (``new/runs/<same name>``): moved when
    ``move`` (the old folder is an autosave that goes away), else copied (the old folder stays the user's,
    untouched). A name already taken in ``new`` is refused before anything moves. Returns the new paths."""
    old, new = Path(old), Path(new)
    runs = [p for p in (old / RUNS).iterdir() if p.is_dir() and not p.is_symlink()] if (old / RUNS).is_dir() else []
    if not runs:
        return []
    check_runs_idle(old)
    target = new / RUNS
    taken = [p.name for p in runs if (target / p.name).exists()]
    if taken:
        raise InputError(f"{target} already holds run(s) named {', '.join(taken)}; nothing was moved")
    target.mkdir(parents=True, exist_ok=True)
    moved = []
    for run in sorted(runs):
        dest = target / run.name
        if move:
            shutil.move(str(run), str(dest))
        else:
            shutil.copytree(run, dest, symlinks=True)
        moved.append(dest)
    return moved


def run_summary(run: str | Path) -> str:
    """One line for a run folder: method, preset, steps, best validation Dice, where it started from, when,
    and whether it finished; "unreadable" for a damaged run.json."""
    import json
    import time

    run = Path(run)
    try:
        info = json.loads((run / "run.json").read_text())
        tc, state = info.get("train_config", {}), info.get("state", {})
        step, steps = state.get("step", 0), tc.get("steps")
        done = "finished" if steps is not None and step >= steps else ("not started" if not step else "stopped")
        best = state.get("best_dice")
        origin = info.get("started_from") or {}
        parts = [info.get("method", "?"), f"{tc.get('preset', '?')} preset", f"step {step} of {steps}", done]
        if best is not None:
            parts.append(f"best validation Dice {best:.3f}")
        if state.get("fit_step") is not None and state["fit_step"] != step:  # keep_best_fit kept an earlier step
            parts.append(f"keeps step {state['fit_step']} (fits the annotated slices best)")
        if origin.get("run"):
            parts.append(f"{origin.get('how', 'started')} from {Path(origin['run']).name}")
        parts.append(time.strftime("%Y-%m-%d %H:%M", time.localtime((run / "run.json").stat().st_mtime)))
        return f"{run.name}: " + ", ".join(parts)
    except (OSError, ValueError, AttributeError, TypeError):
        return f"{run.name}: unreadable run.json"


def delete_run(run: str | Path, study_folder: str | Path) -> None:
    """Delete one run folder of the study (the caller has asked the user). Only a folder directly under
    ``study_folder/runs`` that holds a run.json and is not in use; never through a symbolic link."""
    run, base = Path(run), Path(study_folder) / RUNS
    if run.is_symlink() or run.parent.resolve() != base.resolve() or not (run / "run.json").is_file():
        raise InputError(f"{run}: not a run folder of the study in {study_folder}")
    if in_use(run):
        raise InputError(f"{run} is in use by {holder(run)}; stop it first")
    shutil.rmtree(run)
