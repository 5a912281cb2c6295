"""Output folders that never hold half-written results and never cost the user a file: one writer at a time,
files and folders made under a temporary name and renamed into place once complete (a rename is atomic on
one file system), and only a folder FER Cam built (its marker file lists everything in it) is ever replaced."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from fercam.files import SHARED, write_atomic

LOCK_NAME = ".fercam-analyze.lock"
STAGING_PREFIX = ".partial-"  # a folder being built: the writer's pid is the last part of its name
REPLACED_PREFIX = ".replaced-"
MARKER = ".fercam-output"  # in every folder FER Cam builds: the names of the files it wrote there


class OutputError(ValueError):
    """An output path that would overwrite the input or a file FER Cam did not write."""


class BusyError(RuntimeError):
    """The output folder is being written by another run."""


def write_json_atomic(path: Path, data) -> None:
    """`data` as JSON, whole or not at all (a reader sees the old file or the whole new one)."""
    write_atomic(path, json.dumps(data, indent=2), mode=SHARED)


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
        while True:
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
            if self._still_named(file):
                break
            file.close()  # the run before removed the file as we opened it: lock the one there now
        file.truncate(0)
        file.write(str(os.getpid()))
        file.flush()
        self._file = file
        return self

    def _still_named(self, file) -> bool:
        """The locked file is the one the folder names (a finishing run may have just removed it)."""
        try:
            return os.path.samestat(os.fstat(file.fileno()), os.stat(self.folder / LOCK_NAME))
        except OSError:
            return False

    def __exit__(self, *_exc) -> None:
        if sys.platform != "win32":  # removed while still locked: a newcomer that opened it sees it is gone
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
        self._file.close()  # closing releases the lock (Windows keeps the file: an open file cannot be removed)


def is_ours(folder: Path) -> bool:
    """A folder FER Cam built that holds nothing else: its marker lists every entry in it."""
    try:
        if folder.is_symlink() or not (folder / MARKER).is_file():
            return False
        written = set((folder / MARKER).read_text(encoding="utf-8").splitlines()) | {MARKER}
        return all(entry.name in written for entry in folder.iterdir())
    except (OSError, UnicodeDecodeError):
        return False


def remove_leftovers(folder: Path) -> None:
    """Folders a killed run left half-built; call with the lock held, so nobody is still writing them."""
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry.name.startswith((STAGING_PREFIX, REPLACED_PREFIX)) and (entry / MARKER).is_file():
            shutil.rmtree(entry, ignore_errors=True)


def _short(name: str, limit: int = 200) -> str:
    """`name` cut to `limit` bytes (whole characters): room for a prefix and a pid within the 255 bytes a
    file system allows a name."""
    return name.encode()[:limit].decode(errors="ignore")


class Staging:
    """An input's folder, built under a temporary name and renamed to its final name once complete."""

    def __init__(self, final: Path) -> None:
        self.final = Path(final)
        self.path = self.final.parent / f"{STAGING_PREFIX}{_short(self.final.name)}-{os.getpid()}"
        if (self.path / MARKER).is_file():
            shutil.rmtree(self.path, ignore_errors=True)  # this process's own leftover from a failed attempt
        self.path.mkdir(parents=True)
        (self.path / MARKER).touch()  # marks it as ours from the start, for `remove_leftovers`

    def publish(self) -> None:
        """Move the finished folder into place, replacing an older result of the same input (and nothing else)."""
        names = sorted(entry.name for entry in self.path.iterdir() if entry.name != MARKER)
        (self.path / MARKER).write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
        old = self.final.parent / f"{REPLACED_PREFIX}{_short(self.final.name)}-{os.getpid()}"
        if os.path.lexists(self.final):
            if not is_ours(self.final):
                kept = self._keep_aside()
                raise OutputError(f"{self.final} appeared meanwhile and is not FER Cam's: the result is in {kept}")
            os.replace(self.final, old)
        os.replace(self.path, self.final)
        shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def _keep_aside(self) -> Path:
        """The finished folder, out of `remove_leftovers`' reach: unmarked, under a free `NAME-2`, `NAME-3`..."""
        (self.path / MARKER).unlink()
        for n in range(2, 100):
            kept = self.final.with_name(f"{self.final.name}-{n}")
            if not os.path.lexists(kept):
                try:
                    os.rename(self.path, kept)  # a folder made there meanwhile: only an empty one is replaced
                    return kept
                except OSError:
                    continue
        return self.path


def resolved(path: str | Path) -> Path:
    """The one form every output is compared in against every input: links followed, `..` gone."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):  # a link loop: compared as written
        return Path(path).absolute()


def same_file(a: str | Path, b: str | Path) -> bool:
    """`a` and `b` name one file: the same resolved path, or (both existing) one file through hard links."""
    try:
        if resolved(a) == resolved(b):
            return True
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def check_outputs(inputs: list[str], outputs: list[str | Path], *, overwrite: bool = False) -> None:
    """Refuse, in one line, output files that are an input or lie inside an input folder (even with
    `overwrite`), are each other, or (without `overwrite`) are already there."""
    for i, out in enumerate(outputs):
        for source in inputs:
            if same_file(source, out):
                raise OutputError(f"the output {out} is the input {source}: choose another file")
            if os.path.isdir(source) and resolved(source) in resolved(out).parents:
                raise OutputError(f"the output {out} is inside the input folder {source}: choose a file outside it")
        for other in outputs[:i]:
            if same_file(other, out):
                raise OutputError(f"{out} is given as two outputs: choose another file for one of them")
        if os.path.isdir(out):
            raise OutputError(f"{out} is a folder: give a file name")
        if os.path.lexists(out) and not overwrite:
            raise OutputError(f"{out} already exists; add --overwrite to replace it")
