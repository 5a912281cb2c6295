"""What a user may type as a source, checked before anything is opened: the stream schemes FER Cam reads, the
one-line help that names every kind, whether a spec is a camera index or a stream URL, and `path_problem`, the
real reason a local path cannot be read.

Kept apart from the sources themselves (`fercam.sources`) because the analyze commands, the CLI and the bench
ask these questions of a spec without opening it (and without importing OpenCV).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

STREAM_SCHEMES = ("rtsp://", "rtmp://", "http://", "https://", "udp://", "tcp://")
SOURCE_HELP = "a webcam index (0, 1, ...), a video file, a stream URL (rtsp://, http://...), an image or a folder"


def is_stream_url(spec: str) -> bool:
    return spec.lower().startswith(STREAM_SCHEMES)


def path_problem(spec: str) -> str:
    """Why `spec` cannot be read as a local file or folder, in words ("" when it can): the real cause, not
    "no such file", for a pipe, a device, a link that loops or leads nowhere, or a scheme FFmpeg is not given."""
    if not spec.strip():
        return f"an empty source: give {SOURCE_HELP}"
    scheme = spec.split("://", 1)[0].lower() if "://" in spec else ""
    if scheme.isalpha() and f"{scheme}://" not in STREAM_SCHEMES:
        return f"{scheme}:// is not a kind of stream FER Cam reads: use {', '.join(STREAM_SCHEMES)}, or download it"
    path = Path(spec)
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return f"{spec} is a link that loops back on itself"
        if os.path.islink(spec):
            return f"{spec} is a link to {os.readlink(spec)}, which does not exist"
        if exc.errno == errno.ENOENT:
            return f"no such file or folder: {spec} (a source is {SOURCE_HELP})"
        return f"cannot read {spec}: {exc.strerror}"
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return f"{spec} is a pipe, not a file: save what it carries to a file and give that"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return f"{spec} is a device, not a file (a webcam is given by its index: 0, 1, ...)"
    return ""


def is_camera_index(spec: str) -> bool:
    return spec.isascii() and spec.isdigit()  # "²" is a digit to Python, not a camera index
