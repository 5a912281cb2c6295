"""Writing the user's files: whole or not at all, readable by the user only, never through a planted link."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

PRIVATE = 0o600  # settings can hold a stream URL with its password; the window file holds the tokens
_UMASK = os.umask(0o022)  # read once, at import (os.umask can only be read by setting it), and put back
os.umask(_UMASK)
SHARED = 0o666 & ~_UMASK  # results the user shares (analyze's exports): as any file the user creates


def write_atomic(path: Path, data: bytes | str, *, mode: int = PRIVATE) -> None:
    """Write `data` to `path` through a new temporary file beside it, then rename: a reader sees the old file
    or the whole new one. The temporary file is created with O_EXCL (mkstemp), so a link planted under any
    name beside `path` is never followed, and it has `mode` before a byte is written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def create_private(path: Path, data: bytes, *, mode: int = PRIVATE) -> None:
    """A new file holding `data`, with `mode`; FileExistsError if anything (a link included) is already there."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
