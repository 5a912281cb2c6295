"""When a face's second opinion is read again (`RefreshRule`): the zoo model costs several times our model, so a
tracked face keeps its opinion until it changes enough, or a second has passed (ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fercam.types import Box, Detection


@dataclass(frozen=True)
class Look:
    """What a face looks like in one frame, as far as the refresh rule cares: its box, its landmarks' shape
    (`pose_shape`) and our model's reading of it (for a known face, the mean of its last two readings: LIVE reads
    the face and its mirror image on alternate calls, and the two views alone differ by more than a moved face)."""

    box: Box
    shape: np.ndarray | None
    ours: np.ndarray


@dataclass
class Remembered:
    """A face's second opinion, when and how the face looked when it was read, and where it was last seen."""

    second: np.ndarray  # its probabilities, then its 512 features where the rule reads them
    at: float
    then: Look
    seen: Box
    seen_at: float
    ours: np.ndarray  # our model's newest reading of it: half of the next `Look.ours`


@dataclass(frozen=True)
class RefreshRule:
    """When a face's second opinion is read again, in every mode: a new face, a face that moved or turned, a face
    whose reading by our model moved, a close call between two emotions (at most every `close_every_s`), and
    otherwise every `every_s` (media time offline, camera time live); never sooner than `soonest_s` after the last
    reading of a known face. The zoo model costs several times ours, and its reading of the same face in the same
    pose barely changes from one frame to the next; a face is known again by its box overlapping (IoU > 0.5) where
    it was last seen."""

    every_s: float = 1.0
    soonest_s: float = 0.0  # LIVE: 0.15, so a face that keeps moving costs at most 7 readings a second
    ours_moved: float = 0.25  # total-variation distance of our model's reading since the refresh
    box_moved: float = 0.6  # IoU with the box at the refresh under this: the face moved, or came closer
    turned: float = 0.12  # change of the landmarks' shape (see `pose_shape`) since the refresh
    close: float = 0.1  # the combined reading's two top emotions this close: a stale opinion could flip the label
    # ...read again for that at most this often: offline, every other frame of a 25-30 fps video, not every frame
    # (a 4-face clip: 15% less CPU, face labels as with the zoo model on every frame 87.4% instead of 88.1%)
    close_every_s: float = 0.05
    # At most this many known faces read again in one call (0: all that are due), those that changed first (see
    # `STEADY`), then the longest kept; the others wait a call. LIVE: 1, as the faces of a call are often due
    # together, and reading five at once holds the analysis back 50-100 ms and costs more a face than one at a time
    # (models/README.md).
    at_once: int = 0

    def reason(self, face: Remembered, look: Look, now: float, combined: np.ndarray) -> str | None:
        """Why `face`, which looks like `look` at `now` and reads `combined` with its kept opinion, is due (the
        first condition that holds, by name), or None when it is not."""
        then, age = face.then, now - face.at
        if 0 <= age < self.soonest_s:
            return None
        top, second = np.sort(combined)[-2:][::-1]
        if not 0 <= age < self.every_s:  # or time went back: a new recording
            return "every_s"
        if top - second < self.close and age >= self.close_every_s:
            return "close"
        if 0.5 * float(np.abs(look.ours - then.ours).sum()) > self.ours_moved:
            return "ours_moved"
        if look.box.iou(then.box) < self.box_moved:
            return "box_moved"
        if _turned(then.shape, look.shape) > self.turned:
            return "turned"
        return None


# The reasons that say nothing changed in the face (a close call, the once-a-second refresh): when `at_once` leaves
# room for fewer faces than are due, a face that moved, turned or whose reading moved goes before these. LIVE, four
# faces: the labels shown as with the second opinion on every face 90.0% -> 93.3% of face-frames, as many reads.
STEADY = frozenset({"close", "every_s"})


def _turned(then: np.ndarray | None, now: np.ndarray | None) -> float:
    """How far the landmarks' shape moved; infinite where landmarks came or went."""
    if then is None or now is None:
        return 0.0 if then is None and now is None else np.inf
    return float(np.abs(now - then).max())


# LIVE reads a face 12-14 times a second, alternating its views: a face that keeps moving is asked at most ~7 times
DEFAULT_REFRESH = RefreshRule()  # OFFLINE and IMAGE: no floor, every due face at once
LIVE_REFRESH = RefreshRule(soonest_s=0.15, at_once=1)


def pose_shape(detection: Detection) -> np.ndarray | None:
    """Where the nose sits between the eyes (across and down) and how wide the mouth is, in eye distances:
    it changes when the head turns or nods, or the mouth widens (a smile); None without five landmarks."""
    points = np.asarray(detection.landmarks, np.float64)
    if points.shape != (5, 2):
        return None
    left_eye, right_eye, nose, mouth_left, mouth_right = points
    eyes = right_eye - left_eye
    span = float(np.hypot(*eyes))
    if span < 1e-6:
        return None
    across, down = eyes / span, np.array([-eyes[1], eyes[0]]) / span
    offset = nose - (left_eye + right_eye) / 2
    mouth = float(np.hypot(*(mouth_right - mouth_left)))
    return np.array([offset @ across / span, offset @ down / span, mouth / span])
