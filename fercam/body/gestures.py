"""Head nodding, shaking and still, from each tracked face's box over the last two seconds.

A nod is the face going up and down again and again, a shake the same sideways; "still" is no
repeated movement and little drift. The rule counts swings: moves back by at least `swing_x` or
`swing_y` face widths (a hysteresis, so jitter of the face detector counts nothing). Tuned and checked on
`../shared/data/gestures/` (see `fercam.body.measure`); the thresholds below are the tuned ones.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fercam.body.cues import UNKNOWN, Cue
from fercam.types import Face

WINDOW_S = 2.0  # the look-back of the rule
MIN_SPAN_S = 1.5  # a track shorter than this is "unknown"
MIN_SAMPLES = 10  # ... and so is one with fewer face boxes (a very slow analysis rate)


@dataclass(frozen=True)
class GestureRule:
    swing_x: float = 0.05  # face widths a sideways move back must reach to count as a swing
    swing_y: float = 0.06  # ... and an up-down one (a turning head moves its box less than a nodding one)
    min_swings: int = 3  # swings in the window that make a nod or a shake (one and a half back-and-forths)
    still_range: float = 0.3  # face widths the head may drift in the window and still be "still"

    def classify(self, xs: np.ndarray, ys: np.ndarray, widths: np.ndarray) -> Cue:
        """The gesture in one window of face-box centres and widths (any units, one for all three)."""
        width = float(np.median(widths))
        if width <= 0:
            return UNKNOWN
        across, up = swings(xs / width, self.swing_x), swings(ys / width, self.swing_y)
        dominant, other = max(across, up), min(across, up)
        if dominant >= self.min_swings and dominant > other:  # as many swings both ways is no nod nor shake
            share = dominant / (dominant + other)
            return Cue("nod" if up > across else "shake", round(share * min(1.0, dominant / (self.min_swings + 1)), 3))
        drift = max(np.ptp(xs), np.ptp(ys)) / width
        if drift > self.still_range:
            return Cue("moving", round(min(1.0, drift / (2 * self.still_range)), 3))
        return Cue("still", round(1 - dominant / self.min_swings, 3))


def swings(values: np.ndarray, swing: float) -> int:
    """How many times `values` turns back by at least `swing` (the first move away counts as one)."""
    count, direction, low, high, extreme = 0, 0, values[0], values[0], values[0]
    for value in values[1:]:
        if direction == 0:
            low, high = min(low, value), max(high, value)
            if high - low >= swing:
                direction, extreme, count = (1 if value == high else -1), value, 1
        elif direction * (value - extreme) > 0:
            extreme = value
        elif abs(value - extreme) >= swing:
            direction, extreme, count = -direction, value, count + 1
    return count


class HeadGestures:
    """`update(faces, timestamp)` -> each face id's head gesture; call it on every analysis."""

    def __init__(self, *, rule: GestureRule | None = None, window_s: float = WINDOW_S) -> None:
        self.rule = rule or GestureRule()
        self.window_s = window_s
        self._tracks: dict[int, deque] = {}

    def update(self, faces: Sequence[Face], timestamp: float) -> dict[int, Cue]:
        gestures = {}
        for face in faces:
            track = self._tracks.setdefault(face.id, deque())
            if track and timestamp < track[-1][0]:
                track.clear()  # time went back (a new clip or a seek): start again
            track.append((timestamp, *face.box.center, face.box.width))
            while timestamp - track[0][0] > self.window_s:
                track.popleft()
            gestures[face.id] = self._read(track)
        # A face the detector missed for a moment keeps its track; one gone for a whole window is forgotten.
        self._tracks = {i: t for i, t in self._tracks.items() if 0 <= timestamp - t[-1][0] <= self.window_s}
        return gestures

    def _read(self, track: deque) -> Cue:
        if len(track) < MIN_SAMPLES or track[-1][0] - track[0][0] < MIN_SPAN_S:
            return UNKNOWN
        _, xs, ys, widths = np.array(track).T
        return self.rule.classify(xs, ys, widths)
