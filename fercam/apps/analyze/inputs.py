"""What to analyse: paths, folders, globs and manifest CSVs turned into a list of inputs, and one folder each."""

from __future__ import annotations

import csv
import glob
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path

from fercam.apps.analyze.outputs import is_ours, resolved
from fercam.pictures import IMAGE_SUFFIXES
from fercam.source_specs import STREAM_SCHEMES

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".aiff", ".aif", ".au", ".wma"}
# What a folder lists: every kind FFmpeg reads alone too (MPEG-TS, raw H.264/H.265 streams, GIF...)
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".mts",
                  ".m2ts", ".h264", ".264", ".h265", ".hevc", ".3gp", ".ogv", ".gif"}  # fmt: skip
MEDIA_SUFFIXES = IMAGE_SUFFIXES | AUDIO_SUFFIXES | VIDEO_SUFFIXES


@dataclass(frozen=True)
class Input:
    spec: str
    labels: dict[str, str] = field(default_factory=dict)  # a manifest's extra columns, carried to index.csv
    error: str = ""  # why it cannot even be listed (an unreadable folder or manifest): reported, the others go on


def collect_inputs(specs: list[str]) -> list[Input]:
    """A folder stands for the media files in it (sorted), a glob for its matches (sorted), a .csv for the
    inputs it lists; everything else is taken as given and reported later if it cannot be read. A folder
    or manifest that cannot be read is one failed input, never the end of the batch."""
    found: list[Input] = []
    for spec in specs:
        try:
            found += _expand(spec)
        except (OSError, ValueError, csv.Error) as exc:
            found.append(Input(spec, error=f"cannot read {spec}: {getattr(exc, 'strerror', None) or exc}"))
    return found


def _expand(spec: str) -> list[Input]:
    path = Path(spec)
    if spec.lower().startswith(STREAM_SCHEMES):
        return [Input(spec)]
    if path.is_dir():
        return [Input(str(p)) for p in sorted(path.iterdir()) if p.suffix.lower() in MEDIA_SUFFIXES]
    if path.suffix.lower() == ".csv" and path.is_file():
        return read_manifest(path)
    if not path.exists() and glob.has_magic(spec):
        return [Input(p) for p in sorted(glob.glob(spec, recursive=True))]
    return [Input(spec)]


def read_manifest(path: Path) -> list[Input]:
    """A CSV with a header: the first column is the input (relative to the CSV's folder), the others are labels."""
    with path.open(newline="", encoding="utf-8-sig") as file:
        rows = list(csv.reader(file))
    if not rows or not rows[0]:
        raise ValueError(f"{path}: an empty manifest (expected a header such as path,label)")
    header, inputs = rows[0], []
    for row in rows[1:]:
        if not row or not row[0].strip():
            continue
        spec = row[0].strip()
        if not spec.lower().startswith(STREAM_SCHEMES) and not Path(spec).is_absolute():
            spec = str(path.parent / spec)
        inputs.append(Input(spec, dict(zip(header[1:], row[1:]))))
    return inputs


def out_dirs(specs: list[str], out: Path) -> list[Path]:
    """One folder per input, named after it; `NAME-2`, `NAME-3`... when two inputs share a name, or when
    `NAME` is already there and is not an earlier result of FER Cam's (or holds an input): the user's
    own files are never replaced."""
    files = [resolved(spec) for spec in specs if not spec.lower().startswith(STREAM_SCHEMES)]
    taken: set[Path] = set()
    dirs = []
    for spec in specs:
        name = Path(spec.split("?")[0].rstrip("/")).stem or "stream"
        folder = next(
            folder
            for n in itertools.count(1)
            if (folder := out / (name if n == 1 else f"{name}-{n}")) not in taken and _free(folder, files)
        )
        taken.add(folder)
        dirs.append(folder)
    return dirs


def _free(folder: Path, inputs: list[Path]) -> bool:
    """Nothing there, or FER Cam's own earlier result that no input lies in (inputs and folder resolved:
    an input reached through a link into the folder is in it)."""
    if not os.path.lexists(folder):
        return True
    inside = resolved(folder)
    return is_ours(folder) and not any(inside == path or inside in path.parents for path in inputs)
