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
    for run in (sorted(p for p in base.iterdir() if p.is_dir()) if base.is_dir() else []):
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
