"""Analyses as plain records: one JSON line per analysed frame (`--events`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from fercam.contracts import Closing
from fercam.types import EMOTIONS, Analysis, Face


def face_record(face: Face) -> dict:
    return {
        "id": face.id,
        "box": [round(v, 1) for v in (face.box.x1, face.box.y1, face.box.x2, face.box.y2)],
        "emotion": face.emotion,
        "confidence": round(face.confidence, 4),
        "unsure": face.unsure,
        "probs": {name: round(float(p), 4) for name, p in zip(EMOTIONS, face.probs)},
    }


def analysis_record(analysis: Analysis, per_face: Mapping[int, dict] | None = None, **extra) -> dict:
    """`per_face`: more fields for each face by id (live: `speaking`, `person`); `extra`: for the frame (`voice`)."""
    per_face = per_face or {}
    return {
        "frame": analysis.frame_index,
        "timestamp": round(analysis.timestamp, 4),
        "faces": [{**face_record(face), **per_face.get(face.id, {})} for face in analysis.faces],
        **extra,
    }


class EventLog(Closing):
    """Appends one JSON object per analysed frame, flushed so a crash keeps what was written."""

    def __init__(self, path: str | Path, *, overwrite: bool = False) -> None:
        self.path = Path(path)
        try:
            self._file = self.path.open("w" if overwrite else "x", encoding="utf-8")
        except FileExistsError:
            raise FileExistsError(f"{self.path} already exists; add --overwrite to replace it") from None

    def write(self, analysis: Analysis, *_frame) -> None:
        self.write_record(analysis_record(analysis))

    def write_record(self, record: dict) -> None:
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()
