"""`fercam analyze` end to end with the real detector and model: files, counts, ids, sound, interruptions.

The emotion model may be a placeholder, so nothing here asserts which emotion was found.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import write_clip
from conftest import count_frames

from fercam.apps.analyze.analyze import analyze_inputs
from fercam.apps.analyze.outputs import OutputError, Staging, remove_leftovers
from fercam.apps.analyze.report import TIMELINE_COLUMNS
from fercam.apps.analyze.results import Options
from fercam.apps.cli import main
from fercam.paths import model_file
from fercam.types import EMOTIONS

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
    assert set(face["share_of_time"]) == {*EMOTIONS, "unsure"} and set(face["mean_probabilities"]) == set(EMOTIONS)
    assert sum(face["share_of_time"].values()) == pytest.approx(1, abs=1e-3)
    assert sum(face["mean_probabilities"].values()) == pytest.approx(1, abs=2e-3)
    most = max(face["share_of_time"], key=face["share_of_time"].get)  # she smiles most of the clip
    assert face["dominant_emotion"] == most and most in EMOTIONS


def test_several_people_get_separate_timelines(two_people_clip, tmp_path):
    (result,) = analyze_inputs([str(two_people_clip)], tmp_path, jobs=1)
    folder = tmp_path / "two_people"
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
    (result,) = analyze_inputs([str(media_dir / "fer_test.mp4")], tmp_path, Options(every=5), jobs=1)
    folder = tmp_path / "fer_test"
    rows = read_timeline(folder)
    frames = {int(r["frame"]) for r in rows}
    assert frames and all(f % 5 == 0 for f in frames)
    assert len(frames) >= 0.8 * FER_TEST_FRAMES / 5
    assert result.frames == FER_TEST_FRAMES
    assert count_frames(folder / "annotated.mp4") == FER_TEST_FRAMES


def test_time_on_screen_is_media_time_whatever_every_is(media_dir, tmp_path):
    clip = media_dir / "fer_test.mp4"  # 115 frames at 25 fps (pts 0 .. 4.56 s), 4.6 s long
    for every in (5, 1_000_000):
        analyze_inputs([str(clip)], tmp_path / str(every), Options(every=every, video=False), jobs=1)
        folder = tmp_path / str(every) / "fer_test"
        rows = read_timeline(folder)
        summary = read_summary(folder)
        assert summary["duration_s"] == pytest.approx(4.6)
        for face_id, face in summary["faces"].items():
            frames = sorted({int(r["frame"]) for r in rows if r["face_id"] == face_id})
            # each analysed frame stands until the next analysed one (frame + every), the last until the end
            expected = sum(min((f + every) / 25, 4.6) - f / 25 for f in frames)
            assert face["time_on_screen_s"] == pytest.approx(expected, abs=0.002)
            assert face["time_on_screen_s"] <= summary["duration_s"]
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


def interrupt_after(frames: int, monkeypatch) -> None:
    """Ctrl-C (a KeyboardInterrupt, as Python delivers SIGINT) when `frames` frames have been analysed."""
    from fercam.pipeline import FaceReader

    done, original = [], FaceReader.read

    def analyze_then_interrupt(self, frame):
        if len(done) == frames:
            raise KeyboardInterrupt
        done.append(frame.index)
        return original(self, frame)

    monkeypatch.setattr(FaceReader, "read", analyze_then_interrupt)


def test_interrupted_run_keeps_complete_partial_results(media_dir, tmp_path, monkeypatch):
    interrupt_after(30, monkeypatch)
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
    (result,) = analyze_inputs([str(media_dir / "two_people.jpg")], tmp_path, jobs=1)
    folder = tmp_path / "two_people"
    rows = read_timeline(folder)
    assert len(rows) == 2 and {r["frame"] for r in rows} == {"0"}
    assert len({r["face_id"] for r in rows}) == 2
    assert result.frames == 1 and result.faces == 2
    assert len(read_summary(folder)["faces"]) == 2
    assert_png(folder / "timeline.png")


def test_a_result_blocked_by_the_users_folder_is_kept_where_the_error_says(tmp_path):
    staging = Staging(tmp_path / "clip")
    (staging.path / "timeline.csv").write_text("time_s\n")
    (tmp_path / "clip").mkdir()  # the user's own folder, made while the input was analysed
    (tmp_path / "clip" / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match="the result is in") as error:
        staging.publish()
    kept = Path(str(error.value).rsplit("the result is in ", 1)[1])
    remove_leftovers(tmp_path)  # what the next run does first
    assert kept == tmp_path / "clip-2" and (kept / "timeline.csv").read_text() == "time_s\n"
    assert (tmp_path / "clip" / "notes.txt").read_text() == "mine"


def test_a_sound_only_stream_is_refused_in_one_line(tmp_path):
    (result,) = analyze_inputs(["http://127.0.0.1:9/a.mp3"], tmp_path, Options(duration=5), jobs=1)
    assert "the sound of a stream is not analysed" in result.error and "\n" not in result.error
    assert not (tmp_path / "a").exists()


def test_the_source_is_closed_when_its_folder_cannot_be_made(media_dir, tmp_path, monkeypatch):
    import fercam.apps.analyze.analyze as analyze

    real_open, closed = analyze.open_source, []

    def open_and_watch(spec):
        source = real_open(spec)
        real_close = source.close
        source.close = lambda: closed.append(real_close())
        return source

    monkeypatch.setattr(analyze, "open_source", open_and_watch)
    (tmp_path / "a_file").write_text("not a folder")
    with pytest.raises(OSError):
        analyze.analyze_one(str(media_dir / "fer_test.mp4"), tmp_path / "a_file" / "fer_test", Options(progress=False))
    assert closed == [None]


def test_inputs_with_the_same_name_get_separate_folders(media_dir, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir()
    copy = other / "fr_obama.png"
    cv2.imwrite(str(copy), cv2.imread(str(media_dir / "fr_obama.jpg")))
    results = analyze_inputs([str(media_dir / "fr_obama.jpg"), str(copy)], tmp_path / "out", jobs=1)
    assert [Path(r.out_dir).name for r in results] == ["fr_obama", "fr_obama-2"]
    assert all((Path(r.out_dir) / "summary.json").is_file() for r in results)


def make_talking_clip(path: Path, photo: Path, speech: list[np.ndarray], fps: int = 10) -> float:
    """An MP4 of a still face with spoken sentences (int16, 16 kHz) as its sound track."""
    audio = np.concatenate(speech[:3])
    seconds = len(audio) / 16000
    image = cv2.resize(cv2.imread(str(photo)), (320, 320))
    write_clip(path, [image] * round(seconds * fps), audio, fps)
    return seconds


def test_sound_track_is_kept_in_the_annotated_video(media_dir, spoken_clips, tmp_path):
    import av

    clip = tmp_path / "talking.mp4"
    seconds = make_talking_clip(clip, media_dir / "fer_justin.jpg", spoken_clips)
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
    image = media_dir / "two_people.jpg"
    assert main(["analyze", str(image), "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2 face id(s)" in out and str(tmp_path / "two_people") in out
    assert (tmp_path / "two_people" / "summary.json").is_file()


def test_cli_analyze_says_how_fast_it_read_the_frames(media_dir, tmp_path, capsys):
    start = time.perf_counter()
    assert main(["analyze", str(media_dir / "fer_test.mp4"), "--duration", "1", "-o", str(tmp_path)]) == 0
    elapsed = time.perf_counter() - start
    found = re.search(r": (\d+) frames at ([\d.]+) fps, 1 face id\(s\)", capsys.readouterr().out)
    assert found, "no frames-per-second in the summary line"
    frames, fps = int(found[1]), float(found[2])
    assert frames == read_summary(tmp_path / "fer_test")["frames"] >= 20
    assert frames / elapsed <= fps <= 1000  # the frame stage alone: faster than the whole command


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


# Reliability (#19): each case run for real, with child processes and signals where a user would meet it.

ROOT = Path(__file__).resolve().parents[1]


def start_analyze(*args: str) -> subprocess.Popen:
    """`fercam analyze ...` as its own process, the way a user or a service manager starts it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "fercam", "analyze", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_rows(out: Path, rows: int, child: subprocess.Popen, count: int = 1, timeout: float = 120) -> list[Path]:
    """The folders of `count` inputs once each timeline has `rows` rows (the child is mid-input)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        staged = [p for p in out.glob("*/timeline.csv") if len(p.read_text().splitlines()) > rows]
        if len(staged) >= count:
            return [p.parent for p in staged]
        time.sleep(0.1)
    raise AssertionError(f"no input of {out} reached {rows} timeline rows in {timeout} s")


def test_a_second_analyze_into_the_same_folder_is_refused(media_dir, tmp_path):
    out = tmp_path / "out"
    first = start_analyze(str(media_dir / "fer_woman2.mp4"), "-o", str(out), "--jobs", "1")
    try:
        wait_for_rows(out, 5, first)
        second = start_analyze(str(media_dir / "fer_test.mp4"), "-o", str(out))
        _, err = second.communicate(timeout=60)
        assert second.returncode == 1
        assert err.strip() == (
            f"fercam: error: {out} is being written by another `fercam analyze` (pid {first.pid}); "
            "wait for it to finish or choose another -o"
        )
        assert not (out / "fer_test").exists()
        first.kill()  # SIGKILL: no chance to finish anything
        first.communicate()
    finally:
        first.kill()
    assert not (out / "fer_woman2").exists()  # a half-made folder is never taken for a finished one
    assert list(out.glob(".partial-*"))
    (result,) = analyze_inputs([str(media_dir / "two_people.jpg")], out, jobs=1)  # the dead run's lock is gone
    assert not result.error and not list(out.glob(".partial-*"))


@pytest.mark.parametrize(
    ("jobs", "stop"), [(1, signal.SIGTERM), (2, signal.SIGTERM), (1, signal.SIGHUP), (2, signal.SIGINT)]
)
def test_sigterm_finishes_the_outputs_like_ctrl_c(media_dir, tmp_path, jobs, stop):
    clips = [media_dir / "fer_woman2.mp4"]
    if jobs == 2:
        clips.append(tmp_path / "second.mp4")
        shutil.copy(clips[0], clips[1])
    out = tmp_path / "out"
    child = start_analyze(*map(str, clips), "-o", str(out), "--jobs", str(jobs))
    try:
        wait_for_rows(out, 20, child, count=len(clips))
        child.send_signal(stop)
        stdout, _ = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 128 + stop, stdout
    assert not list(out.glob(".partial-*"))
    for clip in clips:
        folder = out / clip.stem
        summary = read_summary(folder)
        assert summary["interrupted"] is True and 20 <= summary["frames"] < WOMAN2_FRAMES
        assert count_frames(folder / "annotated.mp4") == summary["frames"]
        assert max(int(r["frame"]) for r in read_timeline(folder)) < summary["frames"]
        assert_png(folder / "timeline.png")


def test_an_interrupted_input_with_sound_keeps_sound_and_video_the_same_length(
    media_dir, spoken_clips, tmp_path, monkeypatch
):
    import av

    clip = tmp_path / "talking.mp4"
    seconds = make_talking_clip(clip, media_dir / "fer_justin.jpg", spoken_clips)
    interrupt_after(15, monkeypatch)
    (result,) = analyze_inputs([str(clip)], tmp_path / "out", jobs=1)
    assert result.interrupted and result.frames == 15 < seconds * 10
    with av.open(str(tmp_path / "out" / "talking" / "annotated.mp4")) as annotated:
        audio = annotated.streams.audio[0]
        sound_s = max(float(p.pts * p.time_base) for p in annotated.demux(audio) if p.pts is not None)
    assert sound_s == pytest.approx(1.5, abs=0.15)  # 15 frames at 10 fps, not the clip's whole sound


def test_a_timeline_never_holds_a_half_line(tmp_path):
    from fercam.apps.analyze.report import TimelineWriter
    from fercam.types import Analysis, Box, Face

    probs = np.full(7, 1 / 7, np.float32)

    def faces_then_death():  # a process killed in the middle of a crowded frame
        for i in range(300):
            yield Face(i, Box(1.0, 2.0, 3.0, 4.0), 0.99, probs)
        raise SystemExit

    writer = TimelineWriter(tmp_path / "timeline.csv")
    with pytest.raises(SystemExit):
        writer.write(Analysis(0, 0.0, faces_then_death()))
    lines = (tmp_path / "timeline.csv").read_bytes().split(b"\n")
    assert lines[-1] == b""  # what reached the file ends on a whole row
    assert len(lines) == 302 and all(line.count(b",") == len(TIMELINE_COLUMNS) - 1 for line in lines[:-1])


def test_one_failed_input_of_several_fails_the_command_with_a_line_per_input(media_dir, tmp_path, capsys):
    missing = tmp_path / "missing.mp4"
    image = media_dir / "two_people.jpg"
    assert main(["analyze", str(image), str(missing), "-o", str(tmp_path / "out"), "--jobs", "1"]) == 1
    captured = capsys.readouterr()
    assert f"{image}: 1 frames, 2 face id(s)" in captured.out
    assert "1 of 2 inputs analysed, 1 failed" in captured.out
    assert f"fercam: failed {missing}: no such file" in captured.err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--duration", "-5", "argument --duration: expected seconds, 0 or more, not '-5'"),
        ("--every", "0", "argument --every: expected a whole number of 1 or more, not '0'"),
        ("--jobs", "-1", "argument --jobs: expected a whole number of 0 or more, not '-1'"),
        ("--every", "two", "argument --every: expected a whole number of 1 or more, not 'two'"),
    ],
)
def test_out_of_range_options_are_refused_in_one_line(tmp_path, capsys, option, value, message):
    assert main(["analyze", "clip.mp4", "-o", str(tmp_path / "out"), option, value]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == f"fercam analyze: error: {message}"
    assert "Traceback" not in err and not (tmp_path / "out").exists()
