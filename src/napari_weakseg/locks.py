"""One writer at a time: an OS-level lock on a run or study folder, held while writing, and a message that
says who holds it. The lock is ``FOLDER/.weakseg-lock`` (``filelock``: released by the OS if the process
dies) and removed on release; ``FOLDER/.weakseg-lock.info`` tells the next one who it is."""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from .errors import InputError

LOCK = ".weakseg-lock"
INFO = LOCK + ".info"
LOCK_FILES = (LOCK, INFO)


class FolderInUse(InputError):
    """Another process holds the folder's lock."""


def in_use(folder: str | os.PathLike) -> bool:
    """Whether another process holds ``folder``'s lock now (a folder without one is free)."""
    path = Path(folder) / LOCK
    if not path.is_file():
        return False
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        return True
    lock.release()
    return False


def holder(folder: Path) -> str:
    """Who holds the lock of ``folder``, as the holder wrote it (or "another program")."""
    try:
        info = json.loads((Path(folder) / INFO).read_text())
        return f"{info['what']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, KeyError, TypeError):
        return "another program"


@contextmanager
def folder_lock(folder: str | os.PathLike, what: str):
    """Hold ``folder``'s lock for the block; InputError at once if another process holds it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(folder / LOCK), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise FolderInUse(f"{folder} is in use by {holder(folder)}; wait for it to finish, or use another folder") from None
    try:
        (folder / INFO).write_text(
            json.dumps(
                {
                    "what": what,
                    "pid": os.getpid(),
                    "host": socket.gethostname(),
                    "since": time.strftime("%Y-%m-%d %H:%M:%S"),
                    "command": " ".join(sys.argv[:3]),
                }
            )
        )
        yield
    finally:
        (folder / INFO).unlink(missing_ok=True)
        lock.release()
        # no lock file left in the user's folder. (A process that opened the file just before this unlink
        # could lock the old file while a third locks a new one; with no waiting (timeout 0) that needs three
        # writers within microseconds, and a study's save also checks the manifest it would replace.)
        (folder / LOCK).unlink(missing_ok=True)
