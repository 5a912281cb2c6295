"""One reading per person: where a face speaks, its face's and its voice's calibrated distributions pooled.

The rule (log-linear pooling): person ∝ face^FACE_WEIGHT x voice^VOICE_WEIGHT over the seven emotions. Each
source's weight is its held-out skill above chance (1/7) in balanced accuracy, the face's set to 1: the face's
nested persons-and-films-held-out estimate 52.7% (models/README.md), the voice's leave-one-corpus-out mean 40.9%
(EmoDB 46.2%, RAVDESS 37.9%, SAVEE 38.7%; models/VOICE_MODEL.md), so the voice counts (40.9 - 14.3) / (52.7 -
14.3) = 0.69 of the face. The weights are not fitted on joint data: no shared set has a face and a voice labelled
together. Disagreement is shown, never averaged away: when both sources are sure (top probability >= SURE) of
different emotions, the reading says so. Body cues stay beside it, never mixed in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fercam.types import EMOTIONS

CHANCE = 1 / len(EMOTIONS)
FACE_BALANCED, VOICE_BALANCED = 0.527, 0.409
FACE_WEIGHT = 1.0
VOICE_WEIGHT = round((VOICE_BALANCED - CHANCE) / (FACE_BALANCED - CHANCE), 2)  # 0.69
SURE = 0.5  # a source this sure of its top emotion is "sure"; two sure sources that differ disagree


@dataclass(frozen=True)
class PersonReading:
    """A speaking person's pooled reading, with its two sources kept visible."""

    probs: np.ndarray  # (7,) pooled, EMOTIONS order
    face: str  # the face's own top emotion
    voice: str  # the voice's own top emotion
    disagree: bool

    @property
    def emotion(self) -> str:
        return EMOTIONS[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    def label(self) -> str:
        """What a badge shows: "face+voice: angry 64%", or the two sources when they disagree."""
        if self.disagree:
            return f"face {self.face} / voice {self.voice}: disagree"
        return f"face+voice: {self.emotion} {self.confidence:.0%}"

    def record(self) -> dict:
        return {
            "emotion": self.emotion,
            "confidence": round(self.confidence, 4),
            "face": self.face,
            "voice": self.voice,
            "disagree": self.disagree,
        }


def pool(face_probs, voice_probs) -> PersonReading:
    """The person's reading from the face's and the voice's calibrated probabilities (seven each, EMOTIONS order)."""
    face = _distribution(face_probs, "face")
    voice = _distribution(voice_probs, "voice")
    log = FACE_WEIGHT * np.log(np.clip(face, 1e-6, 1)) + VOICE_WEIGHT * np.log(np.clip(voice, 1e-6, 1))
    probs = np.exp(log - log.max())
    probs /= probs.sum()
    face_top, voice_top = int(np.argmax(face)), int(np.argmax(voice))
    disagree = face_top != voice_top and face[face_top] >= SURE and voice[voice_top] >= SURE
    return PersonReading(probs.astype(np.float32), EMOTIONS[face_top], EMOTIONS[voice_top], bool(disagree))


def _distribution(probs, source: str) -> np.ndarray:
    p = np.asarray(probs, np.float64).reshape(-1)
    if p.shape != (len(EMOTIONS),) or not np.all(np.isfinite(p)) or p.min() < 0 or p.sum() <= 0:
        raise ValueError(f"the {source}'s reading must be {len(EMOTIONS)} non-negative probabilities, got {p.tolist()}")
    return p / p.sum()
