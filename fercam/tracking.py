"""Face identity across frames, and temporal smoothing of emotion probabilities.

The tracker knows nothing about detectors or models: it matches boxes by overlap and
distance, and blends each face's probabilities over time so labels do not flicker.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fercam.types import EMOTIONS, Box, Detection, Face


@dataclass
class _Track:
    id: int
    box: Box
    score: float
    probs: np.ndarray
    last_seen: float
    classified_at: float
    landmarks: tuple[tuple[float, float], ...] = ()  # the last detection's: the combined reading aligns by them
    missed: int = 0  # updates (analysed frames) since it was last seen


def _match_cost(a: Box, b: Box) -> float:
    """0 for the same box, 1 for unrelated boxes: 1 - IoU, relaxed by centre distance."""
    (ax, ay), (bx, by) = a.center, b.center
    scale = max(a.width, a.height, b.width, b.height, 1.0)
    distance = math.hypot(ax - bx, ay - by) / scale
    return min(1 - a.iou(b), distance)


def greedy_match(
    olds: Sequence[Box], news: Sequence[Box], cost: Callable[[Box, Box], float], limit: Callable[[int], float]
) -> dict[int, int]:
    """Pairs of boxes, cheapest first, each box in at most one pair and only at a cost within `limit(old index)`:
    new index -> old index. How the tracker follows faces, and the second opinion its remembered ones."""
    pairs = sorted((cost(o, n), oi, ni) for oi, o in enumerate(olds) for ni, n in enumerate(news))
    old_of: dict[int, int] = {}
    used: set[int] = set()
    for cost, oi, ni in pairs:
        if cost <= limit(oi) and oi not in used and ni not in old_of:
            used.add(oi)
            old_of[ni] = oi
    return old_of


class FaceTracker:
    """Greedy box matching with exponential smoothing whose time constant is in seconds.

    A face unseen for `max_age_s` of media time is forgotten, unless it was missed in fewer than
    `max_missed` updates: where analysed frames are far apart (a 0.5 fps time-lapse, `--every 30`) a
    person who stays is still one face, matched then only where it was, at about its size (`gap_cost`)."""

    def __init__(
        self,
        *,
        smoothing_s: float = 0.35,
        max_age_s: float = 1.0,
        max_cost: float = 0.7,
        max_missed: int = 2,
        gap_cost: float = 0.4,
    ) -> None:
        self.smoothing_s = smoothing_s
        self.max_age_s = max_age_s
        self.max_cost = max_cost
        self.max_missed, self.gap_cost = max_missed, gap_cost
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def boxes(self) -> list[Box]:
        return [t.box for t in self._tracks]

    def detections(self) -> list[Detection]:
        """The tracked faces as detections: where they were last seen, for a frame in which nothing moved."""
        return [Detection(t.box, t.score, t.landmarks) for t in self._tracks]

    def due(self, detections: list[Detection], timestamp: float, every_s: float) -> list[bool]:
        """Which detections need a fresh emotion: new faces, and faces last classified `every_s` ago or more."""
        matched = self._match(detections, timestamp)
        return [di not in matched or timestamp - matched[di].classified_at >= every_s for di in range(len(detections))]

    def update(self, detections: list[Detection], probs: np.ndarray, timestamp: float) -> tuple[Face, ...]:
        """Assign ids to this frame's detections and return their smoothed faces.

        A row of NaN in `probs` means "not classified this time": the face keeps its probabilities."""
        self._tracks = [t for t in self._tracks if self._recent(t, timestamp) or t.missed < self.max_missed]
        track_of = self._match(detections, timestamp)
        faces = []
        for di, detection in enumerate(detections):
            track = track_of.get(di) or self._new_track(detection, probs[di], timestamp)
            self._advance(track, detection, probs[di], timestamp)
            faces.append(Face(track.id, detection.box, detection.score, track.probs))
        for track in self._tracks:
            track.missed = 0 if track.last_seen == timestamp else track.missed + 1
        return tuple(faces)

    def _recent(self, track: _Track, timestamp: float) -> bool:
        return timestamp - track.last_seen <= self.max_age_s

    def _match(self, detections: list[Detection], timestamp: float) -> dict[int, _Track]:
        """Greedy matching, cheapest pair first: detection index -> its track (a track unseen for longer than
        `max_age_s` only by a box close to its last one)."""
        tracks = self._tracks

        def limit(ti: int) -> float:
            return self.max_cost if self._recent(tracks[ti], timestamp) else self.gap_cost

        matched = greedy_match([t.box for t in tracks], [d.box for d in detections], _match_cost, limit)
        return {di: tracks[ti] for di, ti in matched.items()}

    def _new_track(self, detection: Detection, probs: np.ndarray, timestamp: float) -> _Track:
        start = np.full(len(EMOTIONS), 1 / len(EMOTIONS), np.float32) if np.isnan(probs).any() else probs
        track = _Track(
            self._next_id, detection.box, detection.score, np.asarray(start, np.float32), timestamp, timestamp
        )
        self._next_id += 1
        self._tracks.append(track)
        return track

    def _advance(self, track: _Track, detection: Detection, probs: np.ndarray, timestamp: float) -> None:
        if not np.isnan(probs).any():
            dt = max(0.0, timestamp - track.classified_at)
            keep = math.exp(-dt / self.smoothing_s) if self.smoothing_s > 0 else 0.0
            track.probs = (keep * track.probs + (1 - keep) * np.asarray(probs, np.float32)).astype(np.float32)
            track.classified_at = timestamp
        track.box, track.score, track.last_seen = detection.box, detection.score, timestamp
        track.landmarks = detection.landmarks
