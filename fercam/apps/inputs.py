"""What to analyse: paths, folders, globs and manifest CSVs turned into a list of inputs, and one folder each."""

from __future__ import annotations

import csv
import glob
from dataclasses import dataclass, field
from pathlib import Path

from fercam.sources import IMAGE_SUFFIXES, STREAM_SCHEMES

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
MEDIA_SUFFIXES = IMAGE_SUFFIXES | AUDIO_SUFFIXES | VIDEO_SUFFIXES


@dataclass(frozen=True)
class Input:
    spec: str
    labels: dict[str, str] = field(default_factory=dict)  # a manifest's extra columns, carried to index.csv


def collect_inputs(specs: list[str]) -> list[Input]:
    """A folder stands for the media files in it (sorted), a glob for its matches (sorted), a .csv for the
    inputs it lists; everything else is taken as given and reported later if it cannot be read."""
    found: list[Input] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found += [Input(str(p)) for p in sorted(path.iterdir()) if p.suffix.lower() in MEDIA_SUFFIXES]
        elif path.suffix.lower() == ".csv" and path.is_file():
            found += read_manifest(path)
        elif not path.exists() and not spec.lower().startswith(STREAM_SCHEMES) and glob.has_magic(spec):
            found += [Input(p) for p in sorted(glob.glob(spec, recursive=True))]
        else:
            found.append(Input(spec))
    return found


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
    """One folder per input, named after it, made unique when two inputs share a name."""
    seen: dict[str, int] = {}
    dirs = []
    for spec in specs:
        name = Path(spec.split("?")[0].rstrip("/")).stem or "stream"
        seen[name] = seen.get(name, 0) + 1
        dirs.append(out / (name if seen[name] == 1 else f"{name}-{seen[name]}"))
    return dirs
