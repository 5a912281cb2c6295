"""Posture cues from one person's body points, as measured rules with documented thresholds.

Every distance is in the person's own units (shoulder widths, or head widths for the face), in the
body's frame (across the shoulders, and down from them), so the rules hold at any distance from the
camera and survive a mirrored picture. A cue whose body part is not in the picture is "unknown".
These are cues people code by hand in studies of non-verbal behaviour, never an emotion.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from fercam.body.pose import Pose

NOSE, L_EAR, R_EAR, L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 0, 7, 8, 11, 12, 13, 14, 15, 16
FACE = (0, 2, 5, 9, 10)  # nose, eyes, mouth corners
HANDS = ((15, 17, 19, 21), (16, 18, 20, 22))  # wrist, pinky, index, thumb: left, then right
MIN_PRESENT = 0.6  # a point counts as seen when the model is at least this sure it lies in the picture
# A hand counts only with its forearm: with the arms out of the picture (a webcam's head and shoulders)
# the model still places hand points inside it, at presence up to 0.9, but never the elbows.

# Thresholds: (off, on) pairs; the cue's strength ramps linearly between them (see ramp()).
CROSS_INWARD = (0.55, 0.85)  # both hands' moves from their own shoulder towards the other, summed, shoulder widths
CROSS_EACH = 0.15  # ... and each hand's own move at least this (a hand left at its own side crosses nothing)
CROSS_HEIGHT = (0.3, 2.5)  # hands between these depths below the shoulder line (chest to waist)
FACE_REACH = (1.2, 0.7)  # a hand point's distance from the face centre, head widths
RAISED_NECK = (0.9, 0.75)  # ear-to-shoulder height as a share of the person's baseline
NECK_PRIOR = 0.6  # ear-to-shoulder height / shoulder width of an upright adult, until a baseline exists
LEAN_IN = (1.05, 1.15)  # shoulder width in pixels as a share of the baseline: nearer the camera
LEAN_BACK = (0.95, 0.85)  # ... farther from it
OPEN_SPREAD = (1.2, 1.7)  # hands' lateral spread, shoulder widths: beyond the shoulders is open
CLOSED_SPREAD = (0.8, 0.4)  # hands together in front of the body is closed


def ramp(value: float, off: float, on: float) -> float:
    """0 at `off`, 1 at `on`, linear between (either direction)."""
    return float(np.clip((value - off) / (on - off), 0.0, 1.0))


@dataclass(frozen=True)
class Cue:
    """A cue's state ("unknown" when the body part is not seen) and how sure the rule is, 0..1."""

    state: str = "unknown"
    confidence: float = 0.0

    @property
    def known(self) -> bool:
        return self.state != "unknown"


UNKNOWN = Cue()


def yes_no(strength: float, seen: float) -> Cue:
    """A two-state cue: confidence is how far the strength is from the fence, times how well it was seen."""
    return Cue("yes" if strength >= 0.5 else "no", round((0.5 + abs(strength - 0.5)) * seen, 3))


def three_way(high: tuple[str, float], low: tuple[str, float], middle: str, seen: float) -> Cue:
    """A cue with two opposite ramps (e.g. leaning in and back) and a state between them."""
    state, strength = max(high, low, key=lambda pair: pair[1])
    if strength >= 0.5:
        return Cue(state, round(strength * seen, 3))
    return Cue(middle, round((1 - strength) * seen, 3))


@dataclass(frozen=True)
class BodyCues:
    """One person's cues. States: yes/no, lean in/back/upright, openness open/neutral/closed,
    head nod/shake/still/moving, or "unknown" for each."""

    arms_crossed: Cue = UNKNOWN
    hand_at_face: Cue = UNKNOWN
    shoulders_raised: Cue = UNKNOWN
    lean: Cue = UNKNOWN
    openness: Cue = UNKNOWN
    head: Cue = UNKNOWN

    def items(self) -> list[tuple[str, Cue]]:
        return [(f.name, getattr(self, f.name)) for f in fields(self)]


CUE_NAMES: tuple[str, ...] = tuple(f.name for f in fields(BodyCues))


class Body:
    """A pose seen in the body's own frame: `across` and `down` from the shoulders' midpoint, in shoulder widths."""

    def __init__(self, pose: Pose) -> None:
        self.pose = pose
        left, right = pose.xy[L_SHOULDER], pose.xy[R_SHOULDER]
        self.shoulder_px = float(np.hypot(*(left - right)))
        self.unit = max(self.shoulder_px, 1e-6)
        self.x_axis = (left - right) / self.unit  # towards the person's left shoulder
        down = np.array([-self.x_axis[1], self.x_axis[0]])
        self.y_axis = down if down[1] >= 0 else -down  # people are upright in a webcam: down is +y
        self.origin = (left + right) / 2

    def seen(self, *points: int) -> float:
        """The least presence of `points`, or 0 when any of them is not in the picture."""
        present = self.pose.present[list(points)]
        return float(present.min()) if (present >= MIN_PRESENT).all() else 0.0

    def across(self, point: int | np.ndarray) -> float:
        return float((self._xy(point) - self.origin) @ self.x_axis / self.unit)

    def down(self, point: int | np.ndarray) -> float:
        return float((self._xy(point) - self.origin) @ self.y_axis / self.unit)

    def _xy(self, point: int | np.ndarray) -> np.ndarray:
        return self.pose.xy[point] if isinstance(point, int) else point

    def hand(self, side: int) -> np.ndarray:
        """The middle of a hand (wrist, pinky, index, thumb): 0 left, 1 right."""
        return self.pose.xy[list(HANDS[side])].mean(axis=0)

    def neck(self) -> float:
        """How far the ears sit above the shoulder line, in shoulder widths."""
        return -self.down((self.pose.xy[L_EAR] + self.pose.xy[R_EAR]) / 2)


def arms_crossed(body: Body) -> Cue:
    """Both hands have moved across towards the other side of the body, at chest to waist height.

    A hand tucked under the other arm is hidden, and the model then places it near the middle of the
    torso, so the two hands' moves are summed rather than each required to pass the midline."""
    seen = body.seen(L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST)
    if not seen:
        return UNKNOWN
    left, right = body.hand(0), body.hand(1)
    inward = (0.5 - body.across(left), 0.5 + body.across(right))
    at_torso = all(CROSS_HEIGHT[0] <= body.down(hand) <= CROSS_HEIGHT[1] for hand in (left, right))
    strength = ramp(sum(inward), *CROSS_INWARD) * at_torso * (min(inward) >= CROSS_EACH)
    return yes_no(strength, seen)


def hand_at_face(body: Body) -> Cue:
    """A hand point within reach of the face centre (chin, mouth, cheek); unknown when no hand is seen."""
    face_seen = body.seen(*FACE, L_EAR, R_EAR)
    arms = [(elbow, hand) for elbow, hand in zip((L_ELBOW, R_ELBOW), HANDS) if body.seen(elbow, hand[0])]
    if not face_seen or not arms:
        return UNKNOWN
    xy = body.pose.xy
    shoulders = body.shoulder_px if body.seen(L_SHOULDER, R_SHOULDER) else 0.0
    head = max(float(np.hypot(*(xy[L_EAR] - xy[R_EAR]))), 0.4 * shoulders, 1e-6)  # a turned head looks narrow
    centre = xy[list(FACE)].mean(axis=0)
    reach = min(float(np.hypot(*(xy[i] - centre))) for _, hand in arms for i in hand if body.seen(i)) / head
    return yes_no(ramp(reach, *FACE_REACH), face_seen * min(body.seen(elbow, hand[0]) for elbow, hand in arms))


def shoulders_raised(body: Body, baseline_neck: float | None) -> Cue:
    """The ears sit closer to the shoulder line than the person's usual (or an upright adult's) neck height."""
    seen = body.seen(L_SHOULDER, R_SHOULDER, L_EAR, R_EAR)
    if not seen:
        return UNKNOWN
    share = body.neck() / (baseline_neck or NECK_PRIOR)
    return yes_no(ramp(share, *RAISED_NECK), seen * (1.0 if baseline_neck else 0.6))


def lean(body: Body, baseline_px: float | None) -> Cue:
    """Nearer to or farther from the camera than the person's baseline, from the shoulders' width in pixels."""
    seen = body.seen(L_SHOULDER, R_SHOULDER)
    if not seen or not baseline_px:
        return UNKNOWN
    share = body.shoulder_px / baseline_px
    return three_way(("in", ramp(share, *LEAN_IN)), ("back", ramp(share, *LEAN_BACK)), "upright", seen)


def openness(body: Body, crossed: Cue) -> Cue:
    """Hands apart and away from the body is open; together in front (or arms crossed) is closed."""
    seen = body.seen(L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST)
    if not seen:
        return UNKNOWN
    if crossed.state == "yes":
        return Cue("closed", crossed.confidence)
    spread = abs(body.across(body.hand(0)) - body.across(body.hand(1)))
    return three_way(("open", ramp(spread, *OPEN_SPREAD)), ("closed", ramp(spread, *CLOSED_SPREAD)), "neutral", seen)
