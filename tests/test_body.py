"""Body-language cues on landmarks built for the purpose: every rule on and off, the head gestures,
the stage's rate, baselines and matching, the cue strip and the CSV. No model runs here."""

from __future__ import annotations

import csv
import dataclasses

import numpy as np
import pytest

from fercam.body import cues
from fercam.body.cues import Body, BodyCues, Cue
from fercam.body.gestures import GestureRule, HeadGestures, swings
from fercam.body.pose import Pose
from fercam.body.reader import BodyCueReader, match_poses
from fercam.types import Analysis, Box, Face, Frame

# An upright person facing the camera, shoulders 100 px apart (the person's left is the picture's right).
UPRIGHT = {
    0: (200, 145), 2: (212, 135), 5: (188, 135), 7: (230, 140), 8: (170, 140), 9: (208, 160), 10: (192, 160),
    11: (250, 200), 12: (150, 200), 13: (265, 280), 14: (135, 280), 15: (270, 360), 16: (130, 360),
    23: (235, 400), 24: (165, 400),
}  # fmt: skip
HAND_OFFSETS = ((0, 10), (5, 18), (-4, 14))  # pinky, index, thumb from the wrist


def person(moves: dict | None = None, *, hidden=(), scale: float = 1.0, shift=(0.0, 0.0)) -> Pose:
    """A Pose from UPRIGHT with some points moved (a wrist carries its hand), some out of the picture."""
    xy = np.zeros((33, 2), np.float32)
    for i, point in {**UPRIGHT, **(moves or {})}.items():
        xy[i] = point
    for wrist, fingers in ((15, (17, 19, 21)), (16, (18, 20, 22))):
        for finger, offset in zip(fingers, HAND_OFFSETS):
            xy[finger] = xy[wrist] + offset
    xy = (xy - (200, 200)) * scale + (200, 200) + shift
    present = np.ones(33, np.float32)
    present[list(hidden)] = 0.0
    box = Box(170, 115, 230, 175)
    return Pose(xy, np.zeros(33, np.float32), np.ones(33, np.float32), present, 0.9, box)


CROSSED = {15: (165, 285), 16: (235, 290)}  # each hand at the other side of the chest
FOREARMS_OUT = (13, 14, 15, 16, 17, 18, 19, 20, 21, 22)  # a webcam: head and shoulders only


def test_arms_crossed_on_off_and_unknown():
    assert cues.arms_crossed(Body(person(CROSSED))).state == "yes"
    assert cues.arms_crossed(Body(person())).state == "no"
    assert cues.arms_crossed(Body(person({16: (255, 285)}))).state == "no"  # one hand across, the other hangs
    assert cues.arms_crossed(Body(person(CROSSED, hidden=FOREARMS_OUT))) == cues.UNKNOWN


def test_arms_crossed_needs_the_hands_at_the_torso():
    overhead = {15: (165, 60), 16: (235, 60)}  # hands crossed above the head
    assert cues.arms_crossed(Body(person(overhead))).state == "no"


def test_a_mirrored_picture_reads_the_same():
    def mirrored(pose: Pose) -> Pose:
        return dataclasses.replace(pose, xy=pose.xy * (-1, 1) + (400, 0))

    assert cues.arms_crossed(Body(mirrored(person(CROSSED)))).state == "yes"
    assert cues.arms_crossed(Body(mirrored(person()))).state == "no"


def test_hand_at_face_on_off_and_unknown_without_the_forearm():
    chin = {16: (196, 172), 14: (150, 260)}
    assert cues.hand_at_face(Body(person(chin))).state == "yes"
    assert cues.hand_at_face(Body(person())).state == "no"
    assert cues.hand_at_face(Body(person(chin, hidden=(13, 14)))) == cues.UNKNOWN  # hand points, no elbows
    assert cues.hand_at_face(Body(person(hidden=(0, 2, 5, 7, 8)))) == cues.UNKNOWN


def test_shoulders_raised_against_the_prior_and_the_persons_baseline():
    shrug = {i: (x, y + 22) for i, (x, y) in UPRIGHT.items() if i in (0, 2, 5, 7, 8, 9, 10)}  # ears drop to 0.38
    assert cues.shoulders_raised(Body(person(shrug)), None).state == "yes"
    assert cues.shoulders_raised(Body(person()), None).state == "no"
    assert cues.shoulders_raised(Body(person(shrug)), 0.4).state == "no"  # a person whose neck is short anyway
    assert cues.shoulders_raised(Body(person()), 1.0).state == "yes"
    assert cues.shoulders_raised(Body(person(hidden=(7, 8))), None) == cues.UNKNOWN


def test_lean_is_relative_to_the_baseline():
    assert cues.lean(Body(person(scale=1.25)), 100.0).state == "in"
    assert cues.lean(Body(person(scale=0.8)), 100.0).state == "back"
    assert cues.lean(Body(person(scale=1.02)), 100.0).state == "upright"
    assert cues.lean(Body(person(scale=1.25)), None) == cues.UNKNOWN  # no baseline yet
    assert cues.lean(Body(person(hidden=(11,))), 100.0) == cues.UNKNOWN


def test_openness_open_neutral_closed():
    wide = {13: (300, 250), 14: (100, 250), 15: (340, 230), 16: (60, 230)}
    lap = {15: (190, 470), 16: (210, 470)}  # hands together, low
    crossed = Body(person(CROSSED))
    assert cues.openness(Body(person(wide)), Cue("no", 0.9)).state == "open"
    assert cues.openness(Body(person()), Cue("no", 0.9)).state == "neutral"
    assert cues.openness(Body(person(lap)), Cue("no", 0.9)).state == "closed"
    assert cues.openness(crossed, cues.arms_crossed(crossed)).state == "closed"
    assert cues.openness(Body(person(hidden=FOREARMS_OUT)), cues.UNKNOWN) == cues.UNKNOWN


def test_confidence_grows_with_the_margin_and_the_points_presence():
    clear, edge = cues.yes_no(1.0, 1.0), cues.yes_no(0.55, 1.0)
    assert clear.confidence == 1.0 and 0.5 <= edge.confidence < 0.6
    assert cues.yes_no(1.0, 0.7).confidence == pytest.approx(0.7)


def test_swings_count_turns_beyond_the_hysteresis():
    assert swings(np.array([0, 0.1, 0, 0.1, 0]), 0.05) == 4
    assert swings(np.array([0, 0.02, 0, 0.02, 0]), 0.05) == 0  # jitter counts nothing
    assert swings(np.linspace(0, 1, 30), 0.05) == 1  # one move, no turn


def head_track(dx, dy, *, seconds=2.0, fps=30, width=100.0, seed=0):
    """Gestures read from Face boxes moved by dx(t), dy(t) face widths, with a little detector jitter."""
    gestures, rng, read = HeadGestures(), np.random.default_rng(seed), None
    for k in range(int(seconds * fps)):
        t = k / fps
        x, y = 300 + width * (dx(t) + rng.normal(0, 0.005)), 200 + width * (dy(t) + rng.normal(0, 0.005))
        read = gestures.update(
            [Face(1, Box(x - width / 2, y - width / 2, x + width / 2, y + width / 2), 0.99, np.ones(7) / 7)], t
        )
    return read[1]


def test_head_nod_shake_still_moving_and_unknown():
    wave = lambda t: 0.12 * np.sin(2 * np.pi * 2 * t)  # noqa: E731 - two swings a second each way
    still = lambda t: 0.0  # noqa: E731
    assert head_track(still, wave).state == "nod"
    assert head_track(wave, still).state == "shake"
    assert head_track(still, still).state == "still"
    assert head_track(lambda t: 0.5 * t, still).state == "moving"  # one face width in two seconds
    assert head_track(still, wave, seconds=1.0) == cues.UNKNOWN  # too short a track
    assert head_track(wave, wave).state in ("still", "moving")  # as much both ways is neither


def test_gesture_rule_is_scale_free():
    t = np.arange(60) / 30
    ys = 0.12 * np.sin(2 * np.pi * 2 * t)
    rule = GestureRule()
    assert (
        rule.classify(np.zeros(60), ys, np.ones(60)).state
        == rule.classify(np.zeros(60), ys * 500, np.full(60, 500)).state
        == "nod"
    )


def face(face_id, box):
    return Face(face_id, Box(*box), 0.99, np.ones(7) / 7)


def test_poses_join_the_face_whose_centre_is_nearest_their_nose():
    left, right = person(shift=(-150, 0)), person(shift=(150, 0))
    faces = [face(7, (320, 115, 380, 175)), face(3, (20, 115, 80, 175)), face(9, (900, 100, 960, 160))]
    matched = match_poses([left, right], faces)
    assert matched[3] is left and matched[7] is right and 9 not in matched


class FakeEstimator:
    def __init__(self, poses):
        self.poses, self.calls = poses, 0

    def estimate(self, image):
        self.calls += 1
        return self.poses() if callable(self.poses) else list(self.poses)


def frame_at(t):
    return Frame(np.zeros((480, 640, 3), np.uint8), round(t * 30), t)


def test_reader_runs_the_pose_at_its_own_rate_and_keeps_the_posture_between():
    estimator = FakeEstimator([person(CROSSED)])
    reader = BodyCueReader(estimator, period_s=0.25)
    faces = [face(1, (170, 115, 230, 175))]
    reads = [reader.read(frame_at(k / 30), faces) for k in range(60)]  # two seconds at 30 fps
    assert estimator.calls == 8  # every 8th frame: the first frame at least 0.25 s after the last run
    assert all(r[1].arms_crossed.state == "yes" for r in reads)
    assert reads[-1][1].head.known  # the head follows every analysis, not only pose runs
    assert reader.read(frame_at(3.0), []) == {} and estimator.calls == 8  # no face, no pose run


def test_reader_says_unknown_for_a_face_without_a_body():
    reader = BodyCueReader(FakeEstimator([]))
    (cues_of,) = reader.read(frame_at(0), [face(4, (170, 115, 230, 175))]).values()
    assert cues_of == BodyCues()


def test_lean_learns_the_persons_baseline():
    scale = [1.0]
    reader = BodyCueReader(FakeEstimator(lambda: [person(scale=scale[0])]), period_s=0.0)
    faces = [face(1, (170, 115, 230, 175))]
    first = reader.read(frame_at(0), faces)[1]
    assert first.lean == cues.UNKNOWN
    for k in range(1, 8):
        reader.read(frame_at(k), faces)
    scale[0] = 1.3
    assert reader.read(frame_at(9), faces)[1].lean.state == "in"
    scale[0] = 0.75
    assert reader.read(frame_at(10), faces)[1].lean.state == "back"


def test_a_face_missed_for_a_moment_keeps_its_baseline_and_head_track():
    reader = BodyCueReader(FakeEstimator([person()]), period_s=0.0)
    faces = [face(1, (170, 115, 230, 175))]
    for k in range(60):
        seen = faces if k != 40 else []  # the detector misses the face once
        found = reader.read(frame_at(k / 30), seen)
    assert found[1].lean.state == "upright" and found[1].head.state == "still"
    for k in range(60, 60 + 11 * 30):  # gone for eleven seconds: forgotten
        reader.read(frame_at(k / 30), [])
    assert reader.read(frame_at(13.0), faces)[1].lean == cues.UNKNOWN


def test_cue_strip_draws_only_when_switched_on():
    from fercam.annotate import annotate
    from fercam.settings import Settings

    analysis = Analysis(0, 0.0, (face(1, (100, 60, 200, 160)),))
    body = {1: BodyCues(arms_crossed=Cue("yes", 0.9), head=Cue("nod", 0.8))}
    image = np.full((400, 500, 3), 255, np.uint8)
    plain = annotate(image, analysis, Settings(show_emoji=False))
    strip = annotate(image, analysis, Settings(show_emoji=False, body_cues=True), body=body)
    changed = np.argwhere((plain != strip).any(axis=2))
    assert len(changed) > 500 and changed[:, 0].min() >= 160  # chips under the face box
    assert (annotate(image, analysis, Settings(show_emoji=False, body_cues=True)) == plain).all()  # no cues yet
    assert Settings().body_cues is False


def test_body_timeline_rows_at_each_pose_run(tmp_path):
    from fercam.body.timeline import BODY_COLUMNS, BodyTimelineWriter

    writer = BodyTimelineWriter(tmp_path / "body.csv", BodyCueReader(FakeEstimator([person(CROSSED)]), period_s=0.5))
    faces = (face(2, (170, 115, 230, 175)),)
    for k in range(30):
        writer.write(Analysis(k, k / 30, faces), frame_at(k / 30))
    writer.close()
    rows = list(csv.DictReader((tmp_path / "body.csv").open()))
    assert list(rows[0]) == BODY_COLUMNS
    assert [float(r["time_s"]) for r in rows] == [0.0, 0.5]
    assert {r["face_id"] for r in rows} == {"2"} and {r["arms_crossed"] for r in rows} == {"yes"}
    assert float(rows[0]["arms_crossed_confidence"]) > 0.5 and rows[0]["lean"] == "unknown"


def test_stage_contracts():
    from fercam.contracts import CueReader, PoseEstimator

    assert isinstance(FakeEstimator([]), PoseEstimator)
    assert isinstance(BodyCueReader(FakeEstimator([])), CueReader)
