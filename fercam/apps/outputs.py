"""Output folders that never hold half-written results: one writer at a time, files and folders made under a
temporary name and renamed into place once complete (a rename is atomic on one file system)."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

LOCK_NAME = ".fercam-analyze.lock"
STAGING_PREFIX = ".partial-"  # a folder being built: the writer's pid is the last part of its name
REPLACED_PREFIX = ".replaced-"


class BusyError(RuntimeError):
    """The output folder is being written by another run."""


def write_json_atomic(path: Path, data) -> None:
    """Write to a temporary file beside `path`, then rename: a reader sees the old file or the whole new one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(data, indent=2), encoding="utf-8")
    os.replace(temporary, path)


def _try_lock(file) -> None:
    """An exclusive lock on an open file, or OSError at once when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        file.seek(0)  # msvcrt locks bytes from the current position: always the first one
        msvcrt.locking(file.fileno(), msvcrt.LK_NBLCK, 1)
    else:
        import fcntl

        fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


class OutputLock:
    """Holds an output folder for one run; the OS drops the lock when the process dies, so none goes stale."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._file = None

    def __enter__(self) -> OutputLock:
        self.folder.mkdir(parents=True, exist_ok=True)
        file = (self.folder / LOCK_NAME).open("a+", encoding="utf-8")
        try:
            _try_lock(file)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "?"
            file.close()
            raise BusyError(
                f"{self.folder} is being written by another `fercam analyze` (pid {holder}); "
                "wait for it to finish or choose another -o"
            ) from None
        file.truncate(0)
        file.write(str(os.getpid()))
        file.flush()
        self._file = file
        return self

    def __exit__(self, *_exc) -> None:
        self._file.close()  # closing releases the lock; the file stays, removing it would race a newcomer


def remove_leftovers(folder: Path) -> None:
    """Folders a killed run left half-built; call with the lock held, so nobody is still writing them."""
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name.startswith((STAGING_PREFIX, REPLACED_PREFIX)):
            shutil.rmtree(entry, ignore_errors=True)


class Staging:
    """An input's folder, built under a temporary name and renamed to its final name once complete."""

    def __init__(self, final: Path) -> None:
        self.final = Path(final)
        self.path = self.final.parent / f"{STAGING_PREFIX}{self.final.name}-{os.getpid()}"
        shutil.rmtree(self.path, ignore_errors=True)  # this process's own leftover from a failed attempt
        self.path.mkdir(parents=True)

    def publish(self) -> None:
        """Move the finished folder into place, replacing an older result of the same input."""
        old = self.final.parent / f"{REPLACED_PREFIX}{self.final.name}-{os.getpid()}"
        if self.final.exists():
            os.replace(self.final, old)
        os.replace(self.path, self.final)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
