"""Every input analysed honestly (#30): the user's files never touched, times and counts from the container,
Ctrl-C obeyed in every stage, and a one-line message for each input that cannot be used.

Each test makes its odd input with ffmpeg, sox or espeak-ng, and checks times and counts, not only exit codes.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import count_frames, requires_system_packages

from fercam.apps.analyze.analyze import analyze_inputs
from fercam.apps.analyze.outputs import MARKER
from fercam.apps.analyze.results import Options
from fercam.apps.cli import main
from fercam.contracts import SourceError
from fercam.paths import model_file
from fercam.sources import VideoFileSource, open_source

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _makers():
    """Every input here is made by these programs."""
    requires_system_packages("ffmpeg", "sox", "espeak-ng")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


ENTRIES = "stream=codec_type,codec_name,duration,nb_frames"


def probe(path: Path, entries: str = ENTRIES) -> list[dict]:
    """ffprobe's view of each stream (values as text)."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", entries, "-of", "json", str(path)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out).get("streams", [])


def clip(path: Path, *, seconds: float = 4.6, rate: str = "25", extra: tuple[str, ...] = ()) -> Path:
    """A small test-pattern video made by ffmpeg (no faces: the detector is quick on it)."""
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size=96x64:rate={rate}", "-t", str(seconds), *extra, str(path))
    return path


def read_times(source) -> list[float]:
    times = []
    while (frame := source.read()) is not None:
        times.append(frame.timestamp)
    source.close()
    return times


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def rows(path: Path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


# -- the user's files are never destroyed ------------------------------------------------------


def test_analyze_never_replaces_a_folder_it_did_not_write(tmp_path, monkeypatch):
    talk = tmp_path / "p" / "talk"
    talk.mkdir(parents=True)
    video = clip(talk / "talk.mkv", seconds=1, rate="5")
    (talk / "slides.txt").write_text("x")
    before = video.read_bytes()
    monkeypatch.chdir(tmp_path / "p")
    for _ in range(2):  # the second run replaces its own earlier result, still not the user's folder
        assert main(["analyze", "talk/talk.mkv", "-o", "."]) == 0
        assert video.read_bytes() == before and (talk / "slides.txt").read_text() == "x"
        assert sorted(p.name for p in talk.iterdir()) == ["slides.txt", "talk.mkv"]
        assert summary(tmp_path / "p" / "talk-2")["frames"] == 5
    assert not list((tmp_path / "p").glob(".replaced-*")) and not (tmp_path / "p" / "talk-3").exists()
    listed = (tmp_path / "p" / "talk-2" / MARKER).read_text().split()
    assert "summary.json" in listed and "timeline.csv" in listed


def test_a_result_folder_the_user_added_to_is_kept(tmp_path):
    video = clip(tmp_path / "talk.mp4", seconds=1, rate="5")
    out = tmp_path / "out"
    analyze_inputs([str(video)], out, jobs=1)
    (out / "talk" / "notes.txt").write_text("mine")  # the user's notes beside FER Cam's results
    (result,) = analyze_inputs([str(video)], out, jobs=1)
    assert Path(result.out_dir) == out / "talk-2"
    assert (out / "talk" / "notes.txt").read_text() == "mine"


def test_a_hidden_folder_named_like_a_leftover_is_not_cleared(tmp_path):
    out = tmp_path / "out"
    (out / ".partial-mine").mkdir(parents=True)
    (out / ".partial-mine" / "data.txt").write_text("keep")
    analyze_inputs([str(clip(tmp_path / "c.mp4", seconds=1, rate="5"))], out, jobs=1)
    assert (out / ".partial-mine" / "data.txt").read_text() == "keep"


def test_events_never_overwrite_the_input_or_an_existing_file(tmp_path, capsys):
    video = clip(tmp_path / "v.mp4", seconds=1, rate="5")
    before = video.read_bytes()
    base = ["run", "--no-tray", "--source", str(video), "--max-frames", "5"]
    cases = [
        (["--sink", f"file:{tmp_path / 'o.mp4'}", "--events", str(video)], "is the input"),
        (["--sink", f"file:{tmp_path / 'o.mp4'}", "--events", str(tmp_path / "o.mp4")], "two outputs"),
        (["--sink", f"file:{tmp_path / 'o.mp4'}", "--events", str(video), "--overwrite"], "is the input"),
    ]
    for args, message in cases:
        assert main([*base, *args]) == 1
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert message in line
    assert video.read_bytes() == before and not (tmp_path / "o.mp4").exists()
    events = tmp_path / "e.jsonl"
    events.write_text("the user's\n")
    assert main([*base, "--sink", f"file:{tmp_path / 'o.mp4'}", "--events", str(events)]) == 1
    assert "already exists; add --overwrite" in capsys.readouterr().err
    assert events.read_text() == "the user's\n" and not (tmp_path / "o.mp4").exists()
    assert main([*base, "--sink", f"file:{tmp_path / 'o.mp4'}", "--events", str(events), "--overwrite"]) == 0
    assert len(events.read_text().splitlines()) == 5


def test_analyze_into_a_file_is_refused_in_one_line(tmp_path, capsys):
    video = clip(tmp_path / "v.mp4", seconds=1, rate="5")
    assert main(["analyze", str(tmp_path / "v.mp4"), "-o", str(video)]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "is a file, not a folder" in line and count_frames(video) == 5


# -- Ctrl-C in the voice stage -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ten_minutes(tmp_path_factory) -> Path:
    """A 10-minute recording: a grey picture at 0.5 fps (quick to analyse) and espeak-ng speech, repeated by sox."""
    folder = tmp_path_factory.mktemp("ten")
    speech, long = folder / "s.wav", folder / "long.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "I am very happy today, and the weather is lovely."], check=True)
    subprocess.run(["sox", str(speech), "-r", "16000", str(long), "repeat", "250", "trim", "0", "600"], check=True)
    recording = folder / "talk.mkv"  # PCM sound, as a camera or a screen recorder may write it
    grey = "color=c=gray:size=96x64:rate=0.5"
    ffmpeg("-f", "lavfi", "-i", grey, "-i", str(long), "-t", "600", "-c:a", "pcm_s16le", str(recording))
    assert float(subprocess.check_output(["soxi", "-D", str(long)], text=True)) == 600
    return recording


@pytest.mark.skipif(not model_file("voice_mlp.tflite").is_file(), reason="no voice model")
def test_ctrl_c_in_the_voice_stage_stops_within_5_s_and_cuts_every_output_at_one_point(ten_minutes, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-m", "fercam", "analyze", str(ten_minutes), "-o", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    err = bytearray()

    def collect() -> None:
        for chunk in iter(lambda: child.stderr.read1(4096), b""):
            err.extend(chunk)

    threading.Thread(target=collect, daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while b"voice talk" not in err and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the frames are done: the voice stage's progress bar is up
        assert b"voice talk" in err, err.decode(errors="replace")
        time.sleep(1.0)
        child.send_signal(signal.SIGINT)
        signalled = time.monotonic()
        child.wait(timeout=30)
        stopped_in = time.monotonic() - signalled
    finally:
        child.kill()
    assert child.returncode == 130, err.decode(errors="replace")[-2000:]
    assert stopped_in < 5, stopped_in
    folder = out / "talk"
    result = summary(folder)
    cut = result["stopped_at_s"]
    assert result["interrupted"] is True and 0 < cut < 590 and result["duration_s"] == cut
    voice = rows(folder / "voice_timeline.csv")
    assert voice and float(voice[-1]["end_s"]) == pytest.approx(cut, abs=0.01)  # not the whole 10 minutes
    assert result["frames"] == len([t for t in np.arange(0, 600, 2.0) if t < cut])  # frames at 0, 2, 4 ... s
    streams = {s["codec_type"]: s for s in probe(folder / "annotated.mp4", ENTRIES + ",sample_rate")}
    assert int(streams["video"]["nb_frames"]) == result["frames"]
    # AAC codes whole frames of 1024 samples after an encoder delay: the sound ends within three frames of the cut
    aac_slack = 3 * 1024 / int(streams["audio"]["sample_rate"])
    assert float(streams["audio"]["duration"]) == pytest.approx(cut, abs=aac_slack)
    assert streams["audio"]["codec_name"] == "aac"


def test_a_long_recording_is_voiced_in_blocks_as_in_one_piece():
    from fercam.voice.classifier import VoiceTimeline, load_voice_classifier, voice_timeline

    if not model_file("voice_mlp.tflite").is_file():
        pytest.skip("no voice model")
    rng = np.random.default_rng(1)
    t = np.arange(16000 * 7) / 16000
    samples = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.normal(size=t.size)
    classifier = load_voice_classifier()
    whole = voice_timeline(samples.astype(np.float32), 16000, classifier)
    streamed = VoiceTimeline(classifier)
    for start in range(0, len(samples), 4321):  # blocks that cut windows and VAD chunks anywhere
        streamed.feed(samples[start : start + 4321].astype(np.float32))
    blocks = streamed.windows()
    assert [(w.start, w.end, w.speech) for w in blocks] == [(w.start, w.end, w.speech) for w in whole]
    for a, b in zip(blocks, whole):
        assert (a.probs is None) == (b.probs is None)
        if a.probs is not None:
            np.testing.assert_allclose(a.probs, b.probs, atol=1e-5)


# -- times from the container ------------------------------------------------------------------


def test_a_half_fps_clip_lasts_as_long_as_the_file_says(tmp_path):
    video = clip(tmp_path / "slow.mp4", seconds=230, rate="0.5")
    (result,) = analyze_inputs([str(video)], tmp_path / "out", Options(video=False), jobs=1)
    assert result.frames == 115
    assert summary(tmp_path / "out" / "slow")["duration_s"] == pytest.approx(230, abs=1)
    times = read_times(VideoFileSource(video))
    assert times[:3] == [0.0, 2.0, 4.0] and times[-1] == pytest.approx(228)


def test_variable_frame_rate_frames_are_timed_by_their_pts(tmp_path, capsys):
    # 50 frames at 25 fps (0 .. 1.96 s), then one frame every 0.2 s from 2.0 s
    video = clip(
        tmp_path / "vfr.mkv",
        seconds=4,
        extra=("-vf", "setpts='if(lt(N,50),N/25/TB,(2+(N-50)*0.2)/TB)'", "-fps_mode", "vfr"),
    )
    times = read_times(VideoFileSource(video))
    assert times[50] == pytest.approx(2.0) and times[51] == pytest.approx(2.2)
    events = tmp_path / "e.jsonl"
    assert main(["run", "--no-tray", "--source", str(video), "--sink", f"file:{tmp_path / 'o.mp4'}",
                 "--events", str(events)]) == 0  # fmt: skip
    stamps = [json.loads(line)["timestamp"] for line in events.read_text().splitlines()]
    assert stamps[51] == pytest.approx(2.2) and len(stamps) == len(times)
    (result,) = analyze_inputs([str(video)], tmp_path / "out", jobs=1)  # the annotated video keeps the timing
    with av.open(str(tmp_path / "out" / "vfr" / "annotated.mp4")) as annotated:
        shown = [float(frame.pts * frame.time_base) for frame in annotated.decode(video=0)]
    assert len(shown) == len(times) == result.frames and shown == pytest.approx(times, abs=0.001)


def test_run_into_a_file_keeps_the_source_rate_and_honours_size(tmp_path):
    video = clip(tmp_path / "c.mp4")  # 4.6 s at 25 fps
    out = tmp_path / "o.mp4"
    assert main(["run", "--no-tray", "--source", str(video), "--sink", f"file:{out}", "--size", "320x240"]) == 0
    (stream,) = probe(out, "stream=duration,width,height")
    assert float(stream["duration"]) == pytest.approx(4.6, abs=0.05) and count_frames(out) == 115
    assert (stream["width"], stream["height"]) == (320, 240)


def test_an_animated_gif_plays_at_its_own_speed(tmp_path):
    gif = clip(tmp_path / "a.gif", seconds=3, rate="10")
    out = tmp_path / "o.mp4"
    assert main(["run", "--no-tray", "--source", str(gif), "--sink", f"file:{out}"]) == 0
    (stream,) = probe(out, "stream=duration")
    assert float(stream["duration"]) == pytest.approx(3.0, abs=0.1) and count_frames(out) == 30


@pytest.mark.parametrize(("name", "codec"), [("c.ts", ()), ("c.mpg", ("-c:v", "mpeg2video")), ("c.h264", ())])
def test_every_frame_of_mpeg_ts_ps_and_raw_streams(tmp_path, caplog, name, codec):
    video = clip(tmp_path / name, extra=codec)
    times = read_times(VideoFileSource(video))
    assert len(times) == 115 and times[0] == 0.0
    assert times[-1] == pytest.approx(4.56, abs=0.01)
    assert not [r for r in caplog.records if "truncated" in r.getMessage() or "damaged" in r.getMessage()]


def test_sound_longer_than_the_picture_is_not_called_truncated(tmp_path, caplog):
    video = tmp_path / "long_sound.mkv"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=4", "-c:a", "pcm_s16le", str(video))  # fmt: skip
    assert len(read_times(VideoFileSource(video))) == 50
    assert not [r for r in caplog.records if "truncated" in r.getMessage()]


# -- a message for each input that cannot be used ----------------------------------------------


def test_an_audio_only_mp4_is_analysed_as_sound(tmp_path, capsys):
    speech = tmp_path / "s.wav"
    subprocess.run(["espeak-ng", "-w", str(speech), "Good morning, how are you today?"], check=True)
    sound = tmp_path / "voice.mp4"
    ffmpeg("-i", str(speech), "-c:a", "aac", str(sound))
    with pytest.raises(ValueError, match="has no video track \\(only sound\\)"):
        open_source(str(sound))
    (result,) = analyze_inputs([str(sound)], tmp_path / "out", jobs=1)
    assert not result.error and "no video track: its sound was analysed" in result.notes
    folder = tmp_path / "out" / "voice"
    if model_file("voice_mlp.tflite").is_file():
        windows = rows(folder / "voice_timeline.csv")
        assert windows and float(windows[-1]["end_s"]) == pytest.approx(float(probe(sound)[0]["duration"]), abs=0.1)
        assert summary(folder)["voice"]["windows"] == len(windows)


def test_an_unreadable_file_says_so(tmp_path, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    assert main(["run", "--no-tray", "--source", str(junk), "--sink", f"file:{tmp_path / 'o.mp4'}"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"fercam: error: cannot read video: {junk} (not a video FFmpeg can read")


def test_a_superscript_digit_is_not_a_camera(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--no-tray", "--source", "²", "--sink", "file:o.mp4"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "no such file or folder: ²" in line and "int()" not in line


def test_a_one_pixel_wide_image_is_refused_in_one_line(tmp_path, capsys):
    thin = tmp_path / "thin.png"
    cv2.imwrite(str(thin), np.full((200, 1, 3), 128, np.uint8))
    assert main(["run", "--no-tray", "--source", str(thin), "--sink", f"file:{tmp_path / 'o.mp4'}"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "thin.png is 1x200 pixels: too small to hold a face" in line and "Traceback" not in line


def test_a_12000_pixel_wide_photo_finds_both_faces(media_dir, tmp_path):
    photo = cv2.imread(str(media_dir / "two_people.jpg"))
    big = tmp_path / "big.jpg"
    cv2.imwrite(str(big), cv2.resize(photo, (12000, round(photo.shape[0] * 12000 / photo.shape[1]))))
    (result,) = analyze_inputs([str(big)], tmp_path / "out", jobs=1)
    assert result.faces == 2
    boxes = [[float(r[k]) for k in ("x1", "x2")] for r in rows(tmp_path / "out" / "big" / "timeline.csv")]
    left, right = sorted(x1 for x1, _ in boxes)
    assert left < 6000 < right  # one face in each half, in the photo's own pixels


def test_pcm_sound_is_muxed_as_aac(tmp_path):
    video = tmp_path / "pcm.mov"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=2", "-c:a", "pcm_s16le", str(video))  # fmt: skip
    analyze_inputs([str(video)], tmp_path / "out", jobs=1)
    streams = {s["codec_type"]: s for s in probe(tmp_path / "out" / "pcm" / "annotated.mp4")}
    assert streams["audio"]["codec_name"] == "aac" and float(streams["audio"]["duration"]) == pytest.approx(2, abs=0.1)


# -- batches go on past one bad input -----------------------------------------------------------


def test_one_unlistable_path_does_not_stop_an_analyze_batch(media_dir, tmp_path, capsys):
    too_long = str(tmp_path / ("x" * 300))  # the file system refuses the name itself
    empty_manifest = tmp_path / "list.csv"
    empty_manifest.write_text("")
    image = media_dir / "fr_obama.jpg"
    args = ["analyze", too_long, str(empty_manifest), str(image), "-o", str(tmp_path / "out"), "--jobs", "1"]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "1 of 3 inputs analysed, 2 failed" in captured.out
    assert summary(tmp_path / "out" / "fr_obama")["frames"] == 1
    failures = [line for line in captured.err.splitlines() if line.startswith("fercam:")]
    assert "Traceback" not in captured.err and len(failures) == 2
    assert "File name too long" in failures[0] and "an empty manifest" in failures[1]


def test_run_on_a_folder_skips_an_unreadable_image(media_dir, tmp_path, capsys):
    folder = tmp_path / "pictures"
    folder.mkdir()
    shutil.copy(media_dir / "fr_obama.jpg", folder / "a.jpg")
    (folder / "b.jpg").write_bytes(b"not a picture")
    cv2.imwrite(str(folder / "c.png"), np.full((2, 300, 3), 50, np.uint8))  # 2 px high
    shutil.copy(media_dir / "fer_justin.jpg", folder / "d.jpg")
    out = tmp_path / "o.mp4"
    assert main(["run", "--no-tray", "--source", str(folder), "--sink", f"file:{out}"]) == 0
    assert "2 frames from" in capsys.readouterr().out and count_frames(out) == 2
    with pytest.raises(SourceError, match="cannot read image"):
        open_source(str(folder / "b.jpg")).read()


def test_a_file_served_over_http_ends_and_is_timed_by_the_media(tmp_path):
    import functools
    import http.server

    clip(tmp_path / "c.mp4")  # 4.6 s at 25 fps

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/c.mp4"
    try:
        started = time.monotonic()
        assert main(["run", "--no-tray", "--source", url, "--sink", f"file:{tmp_path / 'o.mp4'}", "--max-frames",
                     "0"]) == 0  # fmt: skip
        assert time.monotonic() - started < 60  # it ends with the file instead of reconnecting for ever
        (result,) = analyze_inputs([url], tmp_path / "out", Options(duration=2, video=False), jobs=1)
    finally:
        server.shutdown()
        server.server_close()
    assert result.frames == 50  # 2 s of media at 25 fps, however fast the analysis ran
    assert summary(tmp_path / "out" / "c")["duration_s"] == 2.0


def test_a_stop_in_the_frames_stage_cuts_the_sound_there_and_voices_nothing_after_it(tmp_path, monkeypatch):
    from fercam.apps import stopping
    from fercam.pipeline import FaceReader

    speech, video = tmp_path / "s.wav", tmp_path / "talk.mkv"
    subprocess.run(
        ["espeak-ng", "-w", str(speech), "Good morning. I am so glad to see you all here today."], check=True
    )
    ffmpeg("-f", "lavfi", "-i", "color=c=gray:size=96x64:rate=10", "-i", str(speech), "-shortest", str(video))
    read = FaceReader.read

    def signal_at_frame_15(self, frame):  # what the Ctrl-C handler does, at a known frame
        if frame.index == 15:
            stopping._ask_to_stop(signal.SIGINT, None)
        return read(self, frame)

    monkeypatch.setattr(FaceReader, "read", signal_at_frame_15)
    (result,) = analyze_inputs([str(video)], tmp_path / "out", jobs=1)
    folder = tmp_path / "out" / "talk"
    cut = summary(folder)["stopped_at_s"]  # the end of frame 15, from the container's start
    assert result.interrupted and result.frames == 16 and cut == pytest.approx(1.6, abs=0.02)
    streams = {s["codec_type"]: s for s in probe(folder / "annotated.mp4")}
    assert float(streams["audio"]["duration"]) == pytest.approx(cut, abs=0.05)
    # the voice of the frames before the stop is not analysed after it (that would hold the stop up): said so
    assert not (folder / "voice_timeline.csv").exists()
    assert summary(folder)["voice"] == {"error": "voice skipped: the run was stopped in the frame stage"}
