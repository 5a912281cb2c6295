"""The small value types that flow through every stage of FER Cam."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Emotion(IntEnum):
    """The seven emotions, in FER2013 label order (the model's output order)."""

    ANGRY = 0
    DISGUST = 1
    FEAR = 2
    HAPPY = 3
    SAD = 4
    SURPRISE = 5
    NEUTRAL = 6

    @property
    def label(self) -> str:
        return self.name.lower()


EMOTIONS: tuple[str, ...] = tuple(e.label for e in Emotion)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixel coordinates, (x1, y1) inclusive, (x2, y2) exclusive."""

    x1: float
    y1: float
    x2: float
    y2: float

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def center(self) -> tuple[float, float]:
        return (self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2

    def iou(self, other: Box) -> float:
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.width * self.height + other.width * other.height - inter
        return inter / union if union > 0 else 0.0

    def as_ints(self) -> tuple[int, int, int, int]:
        return round(self.x1), round(self.y1), round(self.x2), round(self.y2)


@dataclass(frozen=True)
class Detection:
    """A face found by a detector: where it is and how sure the detector is."""

    box: Box
    score: float
    landmarks: tuple[tuple[float, float], ...] = ()


@dataclass(frozen=True, eq=False)
class Face:
    """A face with its emotion probabilities in `EMOTIONS` order (smoothed over time when tracked).

    `probs` is a read-only array; two faces are equal when id, box, score, probabilities and `unsure` are.
    `unsure`: the reading's confidence is under the threshold its model was fitted with (`fercam.combined`);
    the overlays then say "unsure" instead of the emotion if the user chose so.
    """

    id: int
    box: Box
    score: float
    probs: np.ndarray
    unsure: bool = False

    def __post_init__(self) -> None:
        probs = np.array(self.probs, np.float32)  # a copy: the caller's array stays theirs
        if probs.shape != (len(Emotion),):
            raise ValueError(f"a face needs {len(Emotion)} probabilities, got shape {probs.shape}")
        probs.flags.writeable = False
        object.__setattr__(self, "probs", probs)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Face):
            return NotImplemented
        same = (self.id, self.box, self.score, self.unsure) == (other.id, other.box, other.score, other.unsure)
        return same and np.array_equal(self.probs, other.probs)

    def __hash__(self) -> int:
        return hash((self.id, self.box, self.score, self.unsure, self.probs.tobytes()))

    @property
    def top(self) -> Emotion:
        """The most probable emotion."""
        return Emotion(int(np.argmax(self.probs)))

    @property
    def emotion(self) -> str:
        """The most probable emotion's label ("happy")."""
        return self.top.label

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))


@dataclass(frozen=True)
class Frame:
    """One BGR image from a source, with its index and capture time (seconds)."""

    image: np.ndarray
    index: int
    timestamp: float


@dataclass(frozen=True)
class Analysis:
    """What the model saw in one frame."""

    frame_index: int
    timestamp: float
    faces: tuple[Face, ...] = field(default_factory=tuple)
