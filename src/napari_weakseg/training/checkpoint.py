"""Run folders and checkpoints that load without executing code.

RUN_DIR/run.json     method, configs, intensity normalisation, versions (JSON)
RUN_DIR/last.pt      everything needed to resume (weights, optimisers, step, RNG)
RUN_DIR/best.pt      weights of the best validation step
Weights are plain tensors loaded with ``torch.load(weights_only=True)``: no pickled
code runs. Every file is written atomically (temporary file + rename), so a run
killed at any moment resumes from the last complete checkpoint.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import torch

from .. import __version__
from ..atomic import remove_stale_temporaries, write_bytes_atomic, write_json_atomic
from ..errors import InputError

RUN_FORMAT = "napari-weakseg run"


def check_finite(weights: dict, what: str) -> None:
    """InputError if a floating-point tensor of ``weights`` (a state dict) holds NaN or inf."""
    bad = [k for k, v in weights.items() if torch.is_tensor(v) and v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise InputError(
            f"{what}: non-finite weights (NaN or inf) in {bad[0]}{f' and {len(bad) - 1} more' if len(bad) > 1 else ''}; refused"
        )


def save_tensors(path: Path, obj: dict) -> Path:
    """Write a checkpoint atomically; one with non-finite model weights is refused (it would predict NaN maps)."""
    if isinstance(obj.get("model"), dict):
        check_finite(obj["model"], Path(path).name)
    buf = io.BytesIO()
    torch.save(obj, buf)
    return write_bytes_atomic(path, buf.getvalue())


def load_tensors(path: Path, device="cpu") -> dict:
    """Load a checkpoint file safely (``weights_only=True``); a clear error if it is not one."""
    if not path.is_file():
        raise InputError(f"{path}: checkpoint missing")
    try:
        obj = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # corrupted, truncated, or a pickle with code in it
        if "Unsupported global" in str(exc):  # a pickled object; never pass on torch's advice to unpickle it
            raise InputError(
                f"{path.name}: holds Python objects besides tensors; napari-weakseg never loads those (loading them could run code)"
            ) from None
        raise InputError(f"{path.name}: not a readable napari-weakseg checkpoint (corrupted or truncated?)") from None
    if not isinstance(obj, dict) or "model" not in obj or not isinstance(obj["model"], dict):
        raise InputError(f"{path.name}: not a napari-weakseg checkpoint (no model weights)")
    check_finite(obj["model"], path.name)
    return obj


def write_run_info(run_dir: Path, info: dict) -> Path:
    return write_json_atomic(run_dir / "run.json", {"format": RUN_FORMAT, "version": __version__, **info})


def read_run_info(run_dir: str | Path) -> dict:
    run_dir = Path(run_dir)
    path = run_dir / "run.json"
    if not path.is_file():
        raise InputError(f"{run_dir}: not a training run folder (no run.json)")
    try:
        info = json.loads(path.read_text())
    except ValueError as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    if info.get("format") != RUN_FORMAT:
        raise InputError(f"{path}: not a napari-weakseg run")
    return info


def has_checkpoint(run_dir: str | Path) -> bool:
    """Whether the run folder holds weights (``last.pt`` or ``best.pt``)."""
    return any((Path(run_dir) / f).is_file() for f in ("last.pt", "best.pt"))


def clear_unstarted_run(run_dir: str | Path) -> bool:
    """A run folder whose run stopped before its first checkpoint (killed, interrupted, a config error after
    start-up) holds run.json and metrics.jsonl but no weights: nothing to continue. Remove those two files and
    any interrupted write's temporaries so that the run can start again; True if there was such a run."""
    run_dir = Path(run_dir)
    remove_stale_temporaries(run_dir)
    if not (run_dir / "run.json").is_file() or has_checkpoint(run_dir):
        return False
    for name in ("run.json", "metrics.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    return True


def fork_run(src: str | Path, dst: str | Path) -> Path:
    """A new run folder ``dst`` that resumes ``src``: its run.json, checkpoints and metrics copied, ``src``
    left as it is (a run saved elsewhere, or another run of the study, is never written to by a resume)."""
    import shutil

    src, dst = Path(src), Path(dst)
    if not (src / "last.pt").is_file() or not (src / "run.json").is_file():
        raise InputError(f"{src}: nothing to resume from (no last.pt / run.json)")
    if dst.exists():
        raise InputError(f"{dst} already exists; resuming writes a new run folder")
    dst.mkdir(parents=True)
    for name in ("run.json", "last.pt", "best.pt", "metrics.jsonl"):
        if (src / name).is_file():
            shutil.copy2(src / name, dst / name)
    return dst
