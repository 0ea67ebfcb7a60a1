"""Atomic file writes: write to a temporary file in the same folder, fsync, rename.

A reader (or a crash) never sees a half-written file: either the old file or the
new one exists under the final name.
"""

from __future__ import annotations

import gzip
import json
import os
import tempfile
from pathlib import Path

TMP_PREFIX = ".weakseg-tmp-"


def _file_mode() -> int:
    """What ``open()`` would give a new file: 0o666 less the process's umask (mkstemp's 0o600 would keep
    colleagues out of a shared study)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=TMP_PREFIX, dir=path.parent)
    try:
        os.chmod(tmp, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=1) + "\n").encode())


def maybe_gzip(path: str | os.PathLike, data: bytes, level: int = 1) -> bytes:
    """Gzip ``data`` when ``path`` ends in ``.gz`` (level 1: fast, still ~5x smaller for masks)."""
    return gzip.compress(data, compresslevel=level, mtime=0) if str(path).endswith(".gz") else data


def remove_stale_temporaries(folder: str | os.PathLike) -> None:
    """Delete temporaries left by a write that was interrupted (e.g. a crash)."""
    folder = Path(folder)
    if folder.is_dir():
        for p in folder.glob(TMP_PREFIX + "*"):
            p.unlink(missing_ok=True)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
