"""What the live overlays and events say of who speaks: which faces speak now, whether the voice comes from off
screen, and each speaking face's person reading (its face and the sure voice pooled, `person.pool`).

`Speaking` (attribution.py) gives probabilities; here a face speaks at even odds or more, as `Speaking.speaker`
says, except that two faces may both speak (overlapping speech). The voice's emotion joins a face only while that
face speaks and the voice model is sure (an "unsure" voice names no emotion, so it pools with nothing).
"""

from __future__ import annotations

import math

import numpy as np

from fercam.speaking.attribution import SPEAKS, Speaking
from fercam.speaking.person import PersonReading, pool
from fercam.types import EMOTIONS, Analysis, Face


def speakers(speaking: Speaking | None) -> set[int]:
    """The ids of the faces that speak now (none without a `speaking`)."""
    return {face_id for face_id, p in speaking.faces.items() if p >= SPEAKS} if speaking is not None else set()


def off_screen(speaking: Speaking | None) -> bool:
    """Someone speaks and no visible face is that person: every face was judged (a face whose mouth has not been
    seen long enough, as in the first second after a silence, might be the one speaking) and none matches."""
    judged = speaking is not None and not any(math.isnan(r) for r in speaking.match.values())
    return judged and speaking.off_screen >= SPEAKS


def person_reading(face: Face, voice: np.ndarray | str | None) -> PersonReading | None:
    """The face's and the voice's readings pooled, where the voice names an emotion (its probabilities)."""
    return pool(face.probs, voice) if isinstance(voice, np.ndarray) else None


def heard_fields(
    analysis: Analysis, voice: np.ndarray | str | None, speaking: Speaking | None
) -> tuple[dict[int, dict], dict]:
    """What a live event adds: per face id `speaking` (0..1) and `person` (the pooled reading's record and the label
    the badge shows, while it speaks; else None); for the frame `voice`: the voice's own reading and whether it
    comes from off screen."""
    talking, per_face = speakers(speaking), {}
    for face in analysis.faces:
        person = person_reading(face, voice) if face.id in talking else None
        p = speaking.faces.get(face.id, 0.0) if speaking is not None else 0.0
        per_face[face.id] = {
            "speaking": round(float(p), 3),
            "person": {**person.record(), "label": person.label()} if person else None,
        }
    if isinstance(voice, np.ndarray):
        reading = {"emotion": EMOTIONS[int(np.argmax(voice))], "confidence": round(float(np.max(voice)), 4)}
    else:
        reading = {"emotion": voice, "confidence": None}  # "unsure", "no speech", or None before any sound
    return per_face, {"voice": {**reading, "off_screen": off_screen(speaking)}}
