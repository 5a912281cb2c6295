"""`fercam analyze` end to end with the real detector and model: files, counts, ids, sound, interruptions.

The emotion model may be a placeholder, so nothing here asserts which emotion was found.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from fercam.apps.analyze import analyze_inputs
from fercam.apps.cli import main
from fercam.apps.report import TIMELINE_COLUMNS
from fercam.paths import model_file
from fercam.types import EMOTIONS

SPEECH = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech" / "emodb.npz"
WOMAN2_FRAMES = 464
FER_TEST_FRAMES = 115
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def read_timeline(folder: Path) -> list[dict]:
    with (folder / "timeline.csv").open(newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == TIMELINE_COLUMNS
        return list(reader)


def read_summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def count_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 100, path


def video_fps(path: Path) -> float:
    capture = cv2.VideoCapture(str(path))
    fps = capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    return fps


@pytest.fixture(scope="module")
def woman2(media_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("woman2")
    (result,) = analyze_inputs([str(media_dir / "fer_woman2.mp4")], out)
    return result, out / "fer_woman2"


def test_video_gives_every_output_file(woman2):
    result, folder = woman2
    assert not result.error and not result.interrupted
    assert Path(result.out_dir) == folder
    assert result.frames == WOMAN2_FRAMES
    assert count_frames(folder / "annotated.mp4") == WOMAN2_FRAMES
    assert_png(folder / "timeline.png")
    assert_png(folder / "distribution.png")


def test_video_timeline_has_one_face_in_nearly_every_frame(woman2):
    _, folder = woman2
    rows = read_timeline(folder)
    frames = [int(r["frame"]) for r in rows]
    assert len(set(frames)) >= 0.9 * WOMAN2_FRAMES
    assert len(frames) == len(set(frames))  # one row per face per frame
    assert {r["face_id"] for r in rows} == {"1"}
    assert all(r["emotion"] in EMOTIONS for r in rows)
    for row in rows[:20]:
        probs = [float(row[name]) for name in EMOTIONS]
        assert sum(probs) == pytest.approx(1, abs=2e-3)
        assert float(row["confidence"]) == pytest.approx(max(probs), abs=1e-4)
        assert float(row["x1"]) < float(row["x2"]) and float(row["y1"]) < float(row["y2"])


def test_video_summary_describes_the_face(woman2):
    _, folder = woman2
    summary = read_summary(folder)
    assert summary["frames"] == WOMAN2_FRAMES and summary["interrupted"] is False
    (face,) = summary["faces"].values()
    rows = len(read_timeline(folder))
    assert face["time_on_screen_s"] == pytest.approx(rows / 29.97, rel=0.01)
    assert face["dominant_emotion"] in EMOTIONS
    assert set(face["share_of_time"]) == set(EMOTIONS) == set(face["mean_probabilities"])
    assert sum(face["share_of_time"].values()) == pytest.approx(1, abs=1e-3)
    assert sum(face["mean_probabilities"].values()) == pytest.approx(1, abs=2e-3)
    assert face["share_of_time"][face["dominant_emotion"]] == max(face["share_of_time"].values())


def test_several_people_get_separate_timelines(media_dir, tmp_path):
    (result,) = analyze_inputs([str(media_dir / "fr_short_hamilton_clip.mp4")], tmp_path, jobs=1)
    folder = tmp_path / "fr_short_hamilton_clip"
    rows = read_timeline(folder)
    per_face = Counter(r["face_id"] for r in rows)
    assert sum(n >= 30 for n in per_face.values()) >= 2, per_face
    for face_id in per_face:
        frames = [int(r["frame"]) for r in rows if r["face_id"] == face_id]
        assert frames == sorted(set(frames))  # each id is its own timeline, one row per frame
    summary = read_summary(folder)
    assert set(summary["faces"]) == set(per_face)
    assert result.faces == len(per_face)
    assert_png(folder / "distribution.png")


def test_every_nth_frame_is_analysed_and_every_frame_annotated(media_dir, tmp_path):
    (result,) = analyze_inputs([str(media_dir / "fer_test.mp4")], tmp_path, every=5, jobs=1)
    folder = tmp_path / "fer_test"
    rows = read_timeline(folder)
    frames = {int(r["frame"]) for r in rows}
    assert frames and all(f % 5 == 0 for f in frames)
    assert len(frames) >= 0.8 * FER_TEST_FRAMES / 5
    assert result.frames == FER_TEST_FRAMES
    assert count_frames(folder / "annotated.mp4") == FER_TEST_FRAMES


def test_time_on_screen_uses_the_clip_frame_rate(media_dir, tmp_path):
    clip = media_dir / "fer_test.mp4"  # 24.7 fps, not the 30 fps fallback
    analyze_inputs([str(clip)], tmp_path, every=5, video=False, jobs=1)
    folder = tmp_path / "fer_test"
    rows = Counter(r["face_id"] for r in read_timeline(folder))
    faces = read_summary(folder)["faces"]
    for face_id, count in rows.items():
        assert faces[face_id]["time_on_screen_s"] == pytest.approx(count * 5 / video_fps(clip), rel=0.01)
    assert not (folder / "annotated.mp4").exists()  # --no-video


def test_bad_inputs_are_reported_and_the_good_one_completes(media_dir, tmp_path):
    missing, corrupt = tmp_path / "missing.mp4", tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    out = tmp_path / "out"
    results = analyze_inputs([str(missing), str(corrupt), str(media_dir / "fer_test.mp4")], out, jobs=2)  # processes
    bad_missing, bad_corrupt, good = results
    assert "no such file" in bad_missing.error and str(missing) in bad_missing.error
    assert "cannot read video" in bad_corrupt.error
    assert "\n" not in bad_missing.error + bad_corrupt.error
    assert not good.error and good.frames == FER_TEST_FRAMES
    assert read_summary(out / "fer_test")["frames"] == FER_TEST_FRAMES
    assert count_frames(out / "fer_test" / "annotated.mp4") == FER_TEST_FRAMES


def test_interrupted_run_keeps_complete_partial_results(media_dir, tmp_path, monkeypatch):
    from fercam.pipeline import FaceReader

    done, original = [], FaceReader.read

    def analyze_then_interrupt(self, frame):
        if len(done) == 30:
            raise KeyboardInterrupt
        done.append(frame.index)
        return original(self, frame)

    monkeypatch.setattr(FaceReader, "read", analyze_then_interrupt)
    (result,) = analyze_inputs([str(media_dir / "fer_test.mp4")], tmp_path, jobs=1)
    folder = tmp_path / "fer_test"
    assert result.interrupted and not result.error
    assert "interrupted" in result.summary_line()
    rows = read_timeline(folder)
    assert rows and {int(r["frame"]) for r in rows} <= set(range(30))
    summary = read_summary(folder)
    assert summary["interrupted"] is True
    assert count_frames(folder / "annotated.mp4") == 30
    assert result.frames == summary["frames"] == 30  # the frames done, not 0
    assert_png(folder / "timeline.png")


def test_image_input_finds_both_faces(media_dir, tmp_path):
    (result,) = analyze_inputs([str(media_dir / "fr_two_people.jpg")], tmp_path, jobs=1)
    folder = tmp_path / "fr_two_people"
    rows = read_timeline(folder)
    assert len(rows) == 2 and {r["frame"] for r in rows} == {"0"}
    assert len({r["face_id"] for r in rows}) == 2
    assert result.frames == 1 and result.faces == 2
    assert len(read_summary(folder)["faces"]) == 2
    assert_png(folder / "timeline.png")


def test_inputs_with_the_same_name_get_separate_folders(media_dir, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = other / "fr_obama.png"
    cv2.imwrite(str(copy), cv2.imread(str(media_dir / "fr_obama.jpg")))
    results = analyze_inputs([str(media_dir / "fr_obama.jpg"), str(copy)], tmp_path / "out", jobs=1)
    assert [Path(r.out_dir).name for r in results] == ["fr_obama", "fr_obama-2"]
    assert all((Path(r.out_dir) / "summary.json").is_file() for r in results)


def make_talking_clip(path: Path, photo: Path, clips: int = 3, fps: int = 10) -> float:
    """An MP4 of a still face with real speech (EmoDB clips, 16 kHz int16) as its sound track."""
    av = pytest.importorskip("av")
    if not SPEECH.is_file():
        pytest.skip(f"speech data not found at {SPEECH}")
    data = np.load(SPEECH)
    audio = data["audio"][data["offsets"][0] : data["offsets"][clips]]
    seconds = len(audio) / 16000
    image = cv2.resize(cv2.imread(str(photo)), (320, 320))
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 320, 320, "yuv420p"
        sound = container.add_stream("aac", rate=16000, layout="mono")
        for _ in range(round(seconds * fps)):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(video.encode())
        frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        container.mux(sound.encode(frame))
        container.mux(sound.encode())
    return seconds


def test_sound_track_is_kept_in_the_annotated_video(media_dir, tmp_path):
    import av

    clip = tmp_path / "talking.mp4"
    seconds = make_talking_clip(clip, media_dir / "fer_justin.jpg")
    (result,) = analyze_inputs([str(clip)], tmp_path / "out", jobs=1)
    folder = tmp_path / "out" / "talking"
    assert not result.error and result.frames == round(seconds * 10)
    with av.open(str(folder / "annotated.mp4")) as annotated:
        assert len(annotated.streams.video) == 1 and len(annotated.streams.audio) == 1
        assert annotated.streams.audio[0].sample_rate == 16000
        assert annotated.duration / 1e6 == pytest.approx(seconds, abs=0.5)
    assert count_frames(folder / "annotated.mp4") == result.frames
    assert not (folder / "annotated.muxing.mp4").exists()
    if model_file("voice_mlp.tflite").is_file():
        with (folder / "voice_timeline.csv").open(newline="") as f:
            windows = list(csv.DictReader(f))
        assert windows and float(windows[-1]["end_s"]) <= seconds + 2.01
        assert read_summary(folder)["voice"]["windows"] == len(windows)


def test_cli_analyze_writes_the_outputs(media_dir, tmp_path, capsys):
    image = media_dir / "fr_two_people.jpg"
    assert main(["analyze", str(image), "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 face id(s)" in out and str(tmp_path / "fr_two_people") in out
    assert (tmp_path / "fr_two_people" / "summary.json").is_file()


def test_cli_analyze_of_a_missing_input_fails_in_one_line(tmp_path, capsys, monkeypatch):
    import logging

    # As in a fresh `fercam` process: no handlers yet, so main()'s logging.basicConfig writes to stderr
    # (pytest's own log capture would otherwise swallow the warning).
    monkeypatch.setattr(logging.root, "handlers", [])
    missing = tmp_path / "missing.mp4"
    assert main(["analyze", str(missing), "-o", str(tmp_path / "out")]) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.out + captured.err
    err = [line for line in captured.err.splitlines() if line.strip()]
    assert len(err) == 1 and str(missing) in err[0] and "no such file" in err[0], err
