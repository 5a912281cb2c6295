"""The body-cue stage: each tracked face's posture and head-gesture cues, at the stage's own rate."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from fercam.body import cues
from fercam.body.cues import BodyCues
from fercam.body.gestures import HeadGestures
from fercam.body.pose import Pose
from fercam.types import Face, Frame

PERIOD_S = 0.33  # posture changes slowly: three pose runs a second are plenty
MATCH_DISTANCE = 0.6  # a pose's nose within this many face widths of a face's centre is that face's body
BASELINE_SAMPLES = 60  # about 20 s of pose runs make a person's usual posture
MIN_BASELINE = 5  # pose runs before "leaning" means anything
FORGET_S = 10.0  # a face id unseen this long loses its baseline


class Baseline:
    """A person's usual value of a measure: the median of their recent samples."""

    def __init__(self, size: int = BASELINE_SAMPLES) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, value: float) -> None:
        self._values.append(value)

    def value(self, min_samples: int = MIN_BASELINE) -> float | None:
        if len(self._values) < min_samples:
            return None
        ordered = sorted(self._values)
        return ordered[len(ordered) // 2]


@dataclass
class _Person:
    """What the stage remembers of one face id between pose runs: their usual posture."""

    necks: Baseline = field(default_factory=Baseline)
    widths: Baseline = field(default_factory=Baseline)
    seen_at: float = 0.0


def match_poses(poses: Sequence[Pose], faces: Sequence[Face]) -> dict[int, Pose]:
    """Each face id's pose: nearest nose to face centre first, each pose used once."""
    pairs = []
    for p, pose in enumerate(poses):
        for face in faces:
            (cx, cy), (nx, ny) = face.box.center, pose.xy[cues.NOSE]
            pairs.append((math.hypot(nx - cx, ny - cy) / max(face.box.width, 1.0), p, face.id))
    matched: dict[int, Pose] = {}
    used: set[int] = set()
    for cost, p, face_id in sorted(pairs):
        if cost <= MATCH_DISTANCE and p not in used and face_id not in matched:
            used.add(p)
            matched[face_id] = poses[p]
    return matched


class BodyCueReader:
    """`read(frame, faces)` -> each face id's BodyCues. Call it on every analysis, from one thread:
    the head gesture follows every face box, while the pose runs at most once per `period_s` and
    its posture cues are kept until the next run."""

    def __init__(self, estimator=None, *, period_s: float = PERIOD_S) -> None:
        if estimator is None:
            from fercam.body.pose import BlazePose

            estimator = BlazePose()
        self.estimator = estimator
        self.period_s = period_s
        self.head = HeadGestures()
        self.last_run: float | None = None  # the frame time of the latest pose run
        self._posture: dict[int, BodyCues] = {}
        self._people: dict[int, _Person] = {}

    def read(self, frame: Frame, faces: Sequence[Face]) -> dict[int, BodyCues]:
        heads = self.head.update(faces, frame.timestamp)
        if self._due(frame.timestamp):
            self.last_run = frame.timestamp
            poses = match_poses(self.estimator.estimate(frame.image) if faces else [], faces)
            self._posture = {face.id: self._posture_of(face.id, poses.get(face.id)) for face in faces}
            for face in faces:
                self._people.setdefault(face.id, _Person()).seen_at = frame.timestamp
            self._people = {i: p for i, p in self._people.items() if 0 <= frame.timestamp - p.seen_at <= FORGET_S}
        return {face.id: replace(self._posture.get(face.id, BodyCues()), head=heads[face.id]) for face in faces}

    def _due(self, timestamp: float) -> bool:
        return self.last_run is None or not 0 <= timestamp - self.last_run < self.period_s

    def _posture_of(self, face_id: int, pose: Pose | None) -> BodyCues:
        """The posture cues against the person's baseline so far; then the baseline learns this run."""
        if pose is None:
            return BodyCues()
        body = cues.Body(pose)
        person = self._people.setdefault(face_id, _Person())
        necks, widths = person.necks, person.widths
        crossed = cues.arms_crossed(body)
        posture = BodyCues(
            arms_crossed=crossed,
            hand_at_face=cues.hand_at_face(body),
            shoulders_raised=cues.shoulders_raised(body, necks.value()),
            lean=cues.lean(body, widths.value()),
            openness=cues.openness(body, crossed),
        )
        if posture.shoulders_raised.known:
            necks.add(body.neck())
        if body.seen(cues.L_SHOULDER, cues.R_SHOULDER):
            widths.add(body.shoulder_px)
        return posture
