"""The body-cue stage end to end: the real BlazePose models, MTCNN faces and `fercam analyze`
on the test media (photos and a clip that no one here posed for)."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from fercam.body.pose import BlazePose, ssd_anchors
from fercam.body.reader import BodyCueReader
from fercam.settings import Settings
from fercam.types import Frame


@pytest.fixture(scope="module")
def face_reader():
    from fercam.pipeline import ReaderConfig, make_face_reader

    return make_face_reader(ReaderConfig())


@pytest.fixture(scope="module")
def estimator():
    return BlazePose()


def read_photo(path, face_reader, estimator):
    frame = Frame(cv2.imread(str(path)), 0, 0.0)
    faces = face_reader.read(frame).faces
    return faces, BodyCueReader(estimator).read(frame, faces)


def test_anchors_are_the_detectors_2254():
    anchors = ssd_anchors()
    assert anchors.shape == (2254, 2)
    assert anchors[0] == pytest.approx([0.5 / 28, 0.5 / 28]) and anchors[-1] == pytest.approx([6.5 / 7, 6.5 / 7])


def test_two_people_both_found_with_arms_crossed(media_dir, face_reader, estimator):
    faces, found = read_photo(media_dir / "two_people.jpg", face_reader, estimator)
    assert len(faces) == 2 and set(found) == {f.id for f in faces}
    for body in found.values():
        assert body.arms_crossed.state == "yes" and body.arms_crossed.confidence > 0.6
        assert body.openness.state == "closed" and body.hand_at_face.state == "no"


def test_astronaut_arms_not_crossed(media_dir, face_reader, estimator):
    faces, found = read_photo(media_dir / "skimage_astronaut.jpg", face_reader, estimator)
    (body,) = found.values()
    assert body.arms_crossed.state == "no" and body.hand_at_face.state == "no"


def test_poses_land_on_the_people(media_dir, estimator):
    poses = estimator.estimate(cv2.imread(str(media_dir / "two_people.jpg")))
    assert len(poses) == 2
    noses = sorted(float(p.xy[0, 0]) for p in poses)
    assert 200 < noses[0] < 290 and noses[1] == pytest.approx(noses[0] + 455, abs=10)  # the portrait, twice
    for pose in poses:
        assert pose.present[[11, 12]].min() > 0.9 and pose.xy[0, 1] < pose.xy[[11, 12], 1].min()  # nose over shoulders


def test_woman2_cues_unknown_where_arms_and_hands_are_out_of_frame(media_dir, face_reader, estimator):
    from fercam.sources import open_source

    source, reader, reads = open_source(str(media_dir / "fer_woman2.mp4")), BodyCueReader(estimator), []
    try:
        while (frame := source.read()) is not None and frame.timestamp < 6:
            reads += reader.read(frame, face_reader.read(frame).faces).values()
    finally:
        source.close()
    assert len(reads) > 150
    for name in ("arms_crossed", "hand_at_face", "openness"):
        assert {getattr(body, name).state for body in reads} == {"unknown"}, name
    shoulders = [body.shoulders_raised for body in reads]
    assert sum(cue.known for cue in shoulders) > 0.9 * len(reads)  # what is in the picture is still read
    assert sum(body.head.known for body in reads) > 0.5 * len(reads)


def test_analyze_writes_body_timeline_and_plots_it(media_dir, tmp_path):
    from fercam.apps.analyze.analyze import analyze_inputs
    from fercam.apps.analyze.results import Options

    (result,) = analyze_inputs([str(media_dir / "fer_woman2.mp4")], tmp_path, Options(duration=3, video=False), jobs=1)
    folder = tmp_path / "fer_woman2"
    rows = list(csv.DictReader((folder / "body_timeline.csv").open()))
    assert not result.error and 8 <= len(rows) <= 11  # about three pose runs a second
    assert {r["face_id"] for r in rows} == {"1"} and {r["arms_crossed"] for r in rows} == {"unknown"}
    assert all(0 <= float(r["head_confidence"]) <= 1 for r in rows)
    assert (folder / "timeline.png").stat().st_size > 10_000


@pytest.fixture(scope="module")
def gesture_tracks():
    from fercam.body.measure import face_tracks

    path = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gestures" / "head_gestures.npz"
    if not path.is_file():
        pytest.skip(f"head-gesture tracks not found at {path} (they sit beside the project root in CI)")
    return face_tracks(path)


def test_shipped_gesture_rule_holds_on_held_out_windows(gesture_tracks):
    from fercam.body.gestures import GestureRule
    from fercam.body.measure import accuracy, jittered

    for tracks in (gesture_tracks, jittered(gesture_tracks)):
        scores = accuracy(GestureRule(), tracks, "test")
        assert set(scores) == {"nod", "shake", "still"} and min(scores.values()) >= 0.85, scores


def test_tuning_never_sees_the_held_out_windows():
    from fercam.body.measure import BLOCK, windows

    frames = np.repeat(np.arange(800.0)[:, None], 3, axis=1)  # each row holds its own frame number
    for part, parity in (("tune", 0), ("test", 1)):
        blocks = [set((w[:, 0] // BLOCK).astype(int)) for w in windows(frames, part)]
        assert len(blocks) == 30 and all(len(b) == 1 and b.pop() % 2 == parity for b in blocks)


def test_live_mode_reads_body_cues_when_they_are_on(media_dir):
    from conftest import ListSink

    from fercam.live import LiveRunner
    from fercam.pipeline import make_live_reader
    from fercam.settings import SettingsStore
    from fercam.sources import VideoFileSource

    sink = ListSink()
    source = VideoFileSource(media_dir / "fer_woman2.mp4", realtime=True)
    store = SettingsStore(initial=Settings(body_cues=True, width=596, height=336))
    runner = LiveRunner(source, sink, store, make_live_reader)
    runner.run(max_frames=60)
    cues = runner.body_cues.get()
    (face_id,) = cues
    assert cues[face_id].arms_crossed.state == "unknown"  # her arms are out of frame
    assert runner.stats.error == ""
