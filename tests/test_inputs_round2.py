"""Every input, round 2 (#39): nothing overwritten through folders or links, a full disk told with the true
count, phone videos upright, one person one face at any rate, no silent truncation, and words that name the
real cause.

Each test makes its odd input with ffmpeg, sox, PIL or numpy, and checks bytes, times, counts and exit codes.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import av
import pytest
from conftest import count_frames, requires_system_packages

from fercam.apps.analyze.analyze import analyze_inputs
from fercam.apps.analyze.results import Options
from fercam.apps.cli import main
from fercam.paths import model_file

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _makers():
    requires_system_packages("ffmpeg")


def ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-y", "-loglevel", "error", *args], check=True)


def clip(path: Path, *, seconds: float = 1, rate: str = "5", size: str = "96x64", extra: tuple = ()) -> Path:
    ffmpeg("-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}", "-t", str(seconds), *extra, str(path))
    return path


def summary(folder: Path) -> dict:
    return json.loads((folder / "summary.json").read_text())


def one_error_line(capsys) -> str:
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("fercam: error: ") and "Traceback" not in line
    return line


# -- 1. data lost --------------------------------------------------------------------------------


def test_an_output_inside_an_input_folder_is_refused_even_with_overwrite(media_dir, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(media_dir / "fr_obama.jpg", photos / "a.jpg")
    before = (photos / "a.jpg").read_bytes()
    base = ["run", "--no-tray", "--source", str(photos), "--overwrite"]
    for outputs in (["--sink", f"file:{photos / 'a.jpg'}"], ["--sink", f"file:{tmp_path / 'o.mp4'}", "--events",
                                                              str(photos / "a.jpg")]):  # fmt: skip
        assert main([*base, *outputs]) == 1
        assert "is inside the input folder" in one_error_line(capsys)
    assert (photos / "a.jpg").read_bytes() == before and not (tmp_path / "o.mp4").exists()


def test_an_input_reached_through_a_link_is_never_replaced_by_a_result(tmp_path, capsys):
    out = tmp_path / "out"
    analyze_inputs([str(clip(tmp_path / "talk.mp4"))], out, jobs=1)
    annotated = out / "talk" / "annotated.mp4"
    before = annotated.read_bytes()
    (tmp_path / "again").mkdir()
    (tmp_path / "again" / "talk.mp4").symlink_to(annotated)  # named like the result folder it lies in
    (result,) = analyze_inputs([str(tmp_path / "again" / "talk.mp4")], out, jobs=1)
    assert not result.error and Path(result.out_dir) == out / "talk-2" and summary(out / "talk-2")["frames"] == 5
    assert annotated.read_bytes() == before
    # and `run` refuses a link to its input as its output, even with --overwrite
    (tmp_path / "alias.mp4").symlink_to(tmp_path / "talk.mp4")
    video_bytes = (tmp_path / "talk.mp4").read_bytes()
    capsys.readouterr()
    assert main(["run", "--no-tray", "--source", str(tmp_path / "talk.mp4"), "--sink",
                 f"file:{tmp_path / 'alias.mp4'}", "--overwrite"]) == 1  # fmt: skip
    assert "is the input" in one_error_line(capsys) and (tmp_path / "talk.mp4").read_bytes() == video_bytes


def _run_limited(args: list[str], max_bytes: int) -> subprocess.CompletedProcess:
    """`fercam ARGS` in a process that may write files of `max_bytes` at most (as on a full disk)."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))

    code = "import sys; from fercam.apps.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *args], preexec_fn=limit, capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip


def test_run_into_a_file_that_cannot_grow_fails_with_the_true_frame_count(tmp_path):
    from fercam.media import count_video_packets

    video = clip(tmp_path / "v.mp4", seconds=2, rate="25", size="320x240")
    out = tmp_path / "o.mp4"
    args = ["run", "--no-tray", "--source", str(video), "--sink", f"file:{out}", "--overwrite", "--detector", "yunet"]
    whole = _run_limited(args, 10**9)
    assert whole.returncode == 0 and count_video_packets(out) == 50
    size = out.stat().st_size
    for share, why in ((0.9, "a file-size limit?"), (0.4, "File too large")):  # at close; in the middle of the run
        done = _run_limited(args, int(size * share))
        held = count_video_packets(out)
        assert done.returncode == 1 and 0 < held < 50, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert f"it holds {held} of the" in line and why in line and "frames from" not in done.stdout


def test_run_onto_a_full_disk_fails_with_the_true_frame_count(tmp_path):
    from fercam.media import count_video_packets

    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=20k", "tmpfs", str(disk)],
                                                   capture_output=True).returncode == 0  # fmt: skip
    if not mounted:
        pytest.skip("mounting a small tmpfs needs root")
    try:
        video, out = clip(tmp_path / "v.mp4", seconds=2, rate="25", size="320x240"), disk / "o.mp4"
        done = _run_limited(["run", "--no-tray", "--source", str(video), "--sink", f"file:{out}"], 10**9)
        held = count_video_packets(out)
        assert done.returncode == 1 and 0 < held < 50 and "frames from" not in done.stdout
        assert f"it holds {held} of the" in done.stderr and "no space left on the device" in done.stderr
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# -- 2. phone videos -----------------------------------------------------------------------------


@pytest.mark.parametrize("turn", [90, 270])
def test_a_phone_video_stored_sideways_is_read_and_written_upright(media_dir, tmp_path, turn):
    import cv2

    photo = cv2.imread(str(media_dir / "fr_obama.jpg"))
    stored = cv2.rotate(photo, cv2.ROTATE_90_CLOCKWISE if turn == 90 else cv2.ROTATE_90_COUNTERCLOCKWISE)
    cv2.imwrite(str(tmp_path / "stored.png"), stored)
    plain, phone = tmp_path / "plain.mp4", tmp_path / "phone.mp4"
    even = "pad=ceil(iw/2)*2:ceil(ih/2)*2"
    ffmpeg("-loop", "1", "-i", str(tmp_path / "stored.png"), "-t", "1", "-r", "5", "-vf", even, "-pix_fmt", "yuv420p",
           str(plain))  # fmt: skip
    ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v", f"rotate={turn}", str(phone))  # a player turns it back
    (result,) = analyze_inputs([str(phone)], tmp_path / "out", jobs=1)
    assert result.frames == 5 and result.faces == 1
    rows = (tmp_path / "out" / "phone" / "timeline.csv").read_text().splitlines()[1:]
    assert len(rows) == 5  # the face in every frame
    with av.open(str(tmp_path / "out" / "phone" / "annotated.mp4")) as annotated:
        frame = next(annotated.decode(video=0))
        even = [side + side % 2 for side in photo.shape[1::-1]]  # as padded for yuv420p
        assert frame.rotation == 0 and [frame.width, frame.height] == even


# -- 3. one person, one face ---------------------------------------------------------------------


def test_the_tracker_keeps_a_face_across_gaps_between_analysed_frames():
    import numpy as np

    from fercam.tracking import FaceTracker
    from fercam.types import Box, Detection

    tracker, happy = FaceTracker(), np.eye(7, dtype=np.float32)[3][None]
    here, nudged, elsewhere = Box(100, 100, 200, 200), Box(110, 105, 210, 205), Box(400, 100, 500, 200)
    ids = [tracker.update([Detection(box, 1.0)], happy, t)[0].id for t, box in [(0, here), (2, nudged), (4, here)]]
    assert ids == [1, 1, 1]  # 2 s apart (a 0.5 fps time-lapse): one person
    assert tracker.update([Detection(elsewhere, 1.0)], happy, 6)[0].id == 2  # not where it was: someone else
    assert tracker.update([Detection(Box(150, 100, 250, 200), 1.0)], happy, 8)[0].id == 3  # moved half its size


@pytest.mark.parametrize(("rate", "seconds", "every", "analysed"), [("0.5", 16, 1, 8), ("25", 4.8, 30, 4)])
def test_a_still_portrait_is_one_face_at_any_analysis_rate(media_dir, tmp_path, rate, seconds, every, analysed):
    portrait = tmp_path / "portrait.mp4"
    ffmpeg("-loop", "1", "-i", str(media_dir / "fr_obama.jpg"), "-t", str(seconds), "-r", rate, "-vf",
           "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-pix_fmt", "yuv420p", str(portrait))  # fmt: skip
    (result,) = analyze_inputs([str(portrait)], tmp_path / "out", Options(every=every, video=False), jobs=1)
    rows = (tmp_path / "out" / "portrait" / "timeline.csv").read_text().splitlines()[1:]
    assert len(rows) == analysed and {row.split(",")[2] for row in rows} == {"1"}
    assert result.faces == 1 and len(summary(tmp_path / "out" / "portrait")["faces"]) == 1


# -- 4. no silent truncation, times from the container -------------------------------------------


def ffprobe_frames(path: Path) -> dict[str, int]:
    """How many frames of each stream FFmpeg itself decodes (past damage, as it does)."""
    command = ["ffprobe", "-v", "quiet", "-count_frames", "-show_entries", "stream=codec_type,nb_read_frames"]
    out = subprocess.run([*command, "-of", "json", str(path)], capture_output=True, text=True).stdout
    return {s["codec_type"]: int(s["nb_read_frames"]) for s in json.loads(out)["streams"]}


def test_a_damaged_middle_is_decoded_past_as_ffmpeg_does_and_said(tmp_path, capsys):
    import random

    good, bad = tmp_path / "good.mp4", tmp_path / "bad.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=25", "-f", "lavfi", "-i", "sine=frequency=300", "-t", "2",
           "-g", "5", "-c:a", "aac", str(good))  # fmt: skip
    data, rng = bytearray(good.read_bytes()), random.Random(1)
    for i in range(len(data) * 4 // 10, len(data) * 6 // 10):  # 20% of the file, in the middle, made noise
        data[i] = rng.randrange(256)
    bad.write_bytes(bytes(data))
    decoded = ffprobe_frames(bad)["video"]
    assert 25 < decoded < 50
    assert main(["analyze", str(bad), "-o", str(tmp_path / "out"), "--no-video", "--jobs", "1"]) == 0
    line = capsys.readouterr().out.strip()
    assert f"{decoded} frames" in line and "bad.mp4 is damaged: skipped" in line and " s and " in line
    report = summary(tmp_path / "out" / "bad")
    assert report["frames"] == decoded and report["duration_s"] == pytest.approx(2.0, abs=0.05)
    assert any("damaged" in note for note in report["notes"])
    if model_file("voice_mlp.tflite").is_file():  # the sound past the damage is analysed too
        assert "the sound is damaged" in line and "error" not in report["voice"]


def test_a_picture_that_starts_late_stays_in_step_with_its_sound(tmp_path):
    late = tmp_path / "late.mkv"  # the picture from 1.5 s, the sound from 0 (as a camera that starts late)
    ffmpeg("-f", "lavfi", "-i", "testsrc=size=96x64:rate=10:duration=2", "-f", "lavfi", "-i",
           "sine=frequency=300:duration=3.5", "-filter_complex", "[0:v]setpts=PTS+1.5/TB[v]", "-map", "[v]", "-map",
           "1:a", "-c:a", "pcm_s16le", "-fps_mode", "passthrough", str(late))  # fmt: skip
    with av.open(str(late)) as source:
        first = float(next(source.decode(video=0)).time)
    assert first == pytest.approx(1.5, abs=0.01)
    (result,) = analyze_inputs([str(late)], tmp_path / "out", jobs=1)
    with av.open(str(tmp_path / "out" / "late" / "annotated.mp4")) as annotated:
        shown = [float(frame.time) for frame in annotated.decode(video=0)]
    assert len(shown) == result.frames == 20 and shown[0] == pytest.approx(first, abs=0.01)
    assert shown[-1] == pytest.approx(first + 1.9, abs=0.01)
    # the sound runs to 3.5 s, past the picture's end (3.4 s): the media lasts as long as its sound
    assert summary(tmp_path / "out" / "late")["duration_s"] == pytest.approx(3.5, abs=0.03)


def test_aac_padding_is_not_counted_as_sound(tmp_path):
    requires_system_packages("sox")
    wav, m4a = tmp_path / "t.wav", tmp_path / "t.m4a"
    subprocess.run(["sox", "-n", "-r", "16000", str(wav), "synth", "2.375", "sine", "300"], check=True)
    ffmpeg("-i", str(wav), "-c:a", "aac", str(m4a))  # 38 packets of 1024 samples: 2.432 s decode
    from fercam.voice.audio import AudioFile

    with AudioFile(m4a) as audio:
        assert sum(len(block) for block in audio.blocks()) == 38000  # 2.375 s at 16 kHz, as the edit list says
    if model_file("voice_mlp.tflite").is_file():
        analyze_inputs([str(m4a)], tmp_path / "out", jobs=1)
        assert summary(tmp_path / "out" / "t")["duration_s"] == 2.375


def test_every_frame_of_an_animated_webp_at_its_time(tmp_path):
    from PIL import Image

    frames = [Image.new("RGB", (96, 64), (25 * i, 100, 200 - 20 * i)) for i in range(10)]
    webp = tmp_path / "anim.webp"
    frames[0].save(webp, save_all=True, append_images=frames[1:], duration=200, lossless=True)
    (result,) = analyze_inputs([str(webp)], tmp_path / "out", jobs=1)
    assert result.frames == 10 and summary(tmp_path / "out" / "anim")["duration_s"] == pytest.approx(2.0)
    out = tmp_path / "o.mp4"
    assert main(["run", "--no-tray", "--source", str(webp), "--sink", f"file:{out}"]) == 0
    assert count_frames(out) == 10


# -- 6. crashes and waste ------------------------------------------------------------------------


def test_a_picture_declaring_billions_of_pixels_is_refused_at_once(tmp_path, capsys):
    import struct
    import time
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    huge = tmp_path / "huge.png"  # the header of a 30000x30000 grey PNG (the pixels would take 900 MB)
    header = struct.pack(">IIBBBBB", 30000, 30000, 8, 0, 0, 0, 0)
    huge.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(bytes(30001)))
                     + chunk(b"IEND", b""))  # fmt: skip
    started = time.monotonic()
    assert main(["run", "--no-tray", "--source", str(huge), "--sink", f"file:{tmp_path / 'o.mp4'}"]) == 1
    assert "too large to analyse" in one_error_line(capsys) and time.monotonic() - started < 10
    (result,) = analyze_inputs([str(huge)], tmp_path / "out", jobs=1)
    assert "too large to analyse (at most 178 megapixels)" in result.error


def test_an_odd_size_and_an_unused_rate_are_said_as_they_are(tmp_path, capsys):
    video, out = clip(tmp_path / "v.mp4"), tmp_path / "o.mp4"
    args = ["run", "--no-tray", "--source", str(video), "--sink", f"file:{out}", "--size", "333x177", "--fps", "12"]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "332x176 (H.264 needs even sides)" in captured.out and "333x177" not in captured.out
    assert "--fps 12 is not used here: a file keeps the source's rate" in captured.err
    with av.open(str(out)) as written:
        stream = written.streams.video[0]
        assert (stream.width, stream.height) == (332, 176) and float(stream.average_rate) == pytest.approx(5)


@pytest.mark.parametrize("seconds", ["inf", "1e10", "nan"])
def test_an_endless_bench_is_refused_in_one_line(seconds, capsys):
    assert main(["bench", "--seconds", seconds]) == 2
    (line,) = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert f"expected seconds from 0.5 to 86400 (a day), not '{seconds}'" in line


def test_a_file_name_of_255_bytes_is_analysed(tmp_path):
    name = "é" * 125 + "x.mp4"  # 255 bytes in UTF-8, the most a file system allows
    assert len(name.encode()) == 255
    video = clip(tmp_path / name)
    (result,) = analyze_inputs([str(video)], tmp_path / "out", jobs=1)
    assert not result.error and summary(tmp_path / "out" / video.stem)["frames"] == 5


# -- 7. words that name the real cause -----------------------------------------------------------


def test_labels_csv_read_as_people_write_it(media_dir, tmp_path):
    from fercam.training.wild import read_photo_set

    shutil.copy(media_dir / "fr_obama.jpg", tmp_path / "a.jpg")
    shutil.copy(media_dir / "fer_justin.jpg", tmp_path / "b.jpg")
    table = tmp_path / "labels.csv"

    def read(data: bytes):
        table.write_bytes(data)
        return read_photo_set(tmp_path)

    photos = read(b"\xef\xbb\xbffile,label\r\na.jpg,happy\r\nb.jpg,3\r\na.jpg,happy\r\n")  # a BOM, a row twice alike
    assert photos.files == ("a.jpg", "b.jpg") and photos.labels.tolist() == [3, 3]
    with pytest.raises(ValueError, match="labels.csv: a header but no pictures listed"):
        read(b"\xef\xbb\xbffile,label\n")
    with pytest.raises(ValueError, match=r"labels.csv: not UTF-8 text \(byte 26\): save it as UTF-8"):
        read("file,label\nb.jpg,happy\ncaf\xe9.jpg,sad\n".encode("latin-1"))
    with pytest.raises(ValueError, match="line 3: a.jpg is labelled sad here and happy on line 2"):
        read(b"file,label\na.jpg,happy\na.jpg,sad\n")


def test_a_source_that_is_no_file_is_called_what_it_is(tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.mp4")
    os.mkfifo(tmp_path / "pipe.jpg")
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")
    (tmp_path / "gone.mp4").symlink_to(tmp_path / "nowhere.mp4")
    cases = {
        str(tmp_path / "pipe.mp4"): "pipe.mp4 is a pipe, not a file",
        str(tmp_path / "pipe.jpg"): "pipe.jpg is a pipe, not a file",
        "/dev/zero": "/dev/zero is a device, not a file",
        str(tmp_path / "loop.mp4"): "loop.mp4 is a link that loops back on itself",
        str(tmp_path / "gone.mp4"): f"gone.mp4 is a link to {tmp_path / 'nowhere.mp4'}, which does not exist",
        "ftp://example.org/clip.mp4": "ftp:// is not a kind of stream FER Cam reads",
        "99999999999999999999999": "no webcam at index 99999999999999999999999",
    }
    for source, message in cases.items():
        assert main(["run", "--no-tray", "--source", source, "--sink", f"file:{tmp_path / 'o.mp4'}"]) == 1, source
        assert message in one_error_line(capsys)
    results = analyze_inputs([str(tmp_path / "pipe.mp4"), str(tmp_path / "loop.mp4")], tmp_path / "out", jobs=1)
    assert [r.error for r in results] == [f"{tmp_path / 'pipe.mp4'} is a pipe, not a file: save what it carries to "
                                          "a file and give that", f"{tmp_path / 'loop.mp4'} is a link that loops "
                                          "back on itself"]  # fmt: skip


def test_a_file_named_like_an_ffmpeg_protocol_is_read_as_a_file(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    clip(tmp_path / "file:colon.mp4")
    assert main(["run", "--no-tray", "--source", "file:colon.mp4", "--sink", "file:o.mp4"]) == 0
    assert "5 frames from file:colon.mp4" in capsys.readouterr().out and count_frames(tmp_path / "o.mp4") == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "", "-o", "out"], "argument INPUT: expected an input, not an empty string"),
        (["analyze", "x.mp4", "-o", ""], "argument -o/--out: expected a folder, not an empty string"),
        (["run", "--no-tray", "--source", "", "--sink", "file:o.mp4"], "expected a source, not an empty string"),
        (["run", "--no-tray", "--source", "x.mp4", "--sink", "file:o.mp4", "--events", " "], "expected a file name"),
    ],
)
def test_an_empty_string_is_refused_not_taken_as_here_or_webcam_0(args, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert message in capsys.readouterr().err and not list(tmp_path.iterdir())


def test_a_folder_lists_every_kind_that_works_alone(tmp_path):
    requires_system_packages("sox")
    folder = tmp_path / "media"
    folder.mkdir()
    for name in ("a.ts", "b.h264"):
        clip(folder / name)
    for name in ("c.aiff", "d.au"):
        subprocess.run(["sox", "-n", "-r", "16000", str(folder / name), "synth", "1", "sine", "300"], check=True)
    results = analyze_inputs([str(folder)], tmp_path / "out", Options(video=False), jobs=1)
    assert [Path(r.input).name for r in results] == ["a.ts", "b.h264", "c.aiff", "d.au"]
    assert [r.frames for r in results[:2]] == [5, 5]
    if model_file("voice_mlp.tflite").is_file():
        assert not any(r.error for r in results)


def test_bench_report_without_matrix_is_refused(tmp_path, capsys):
    assert main(["bench", "--report", str(tmp_path / "r.md")]) == 1
    assert "--report writes the results of --matrix: add --matrix" in one_error_line(capsys)
    assert not (tmp_path / "r.md").exists()


def test_library_warnings_stay_out_of_the_terminal(tmp_path):
    video = clip(tmp_path / "plain.mp4")  # no face: matplotlib warns of a legend with nothing in it
    code = "import sys; from fercam.apps.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def fercam(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)

    done = fercam("analyze", str(video), "-o", str(tmp_path / "out"), "--jobs", "1")
    assert done.returncode == 0 and "Warning" not in done.stderr
    assert (tmp_path / "out" / "plain" / "timeline.png").exists()
    refused = fercam("run", "--no-tray", "--source", "http://127.0.0.1:1/x.mp4", "--sink", f"file:{tmp_path / 'o.mp4'}")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines() == ["fercam: error: cannot open stream: http://127.0.0.1:1/x.mp4"]
    cut = tmp_path / "cut.jpg"  # a photo whose end is missing: libjpeg decodes it and prints on stderr itself
    cut.write_bytes((ROOT / "tests" / "media" / "fr_obama.jpg").read_bytes()[:20000])
    done = fercam("run", "--no-tray", "--source", str(cut), "--sink", f"file:{tmp_path / 'p.mp4'}", "--mode", "image")
    assert done.returncode == 0 and "1 frames from" in done.stdout
    assert done.stderr.strip().splitlines() == [f"fercam: {cut} is damaged: Premature end of JPEG file"]


def test_evaluate_keeps_an_existing_metrics_json_and_limits_photos(media_dir, tmp_path, capsys):
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("fr_obama.jpg", "fer_justin.jpg"):
        shutil.copy(media_dir / name, photos / name)
    (photos / "labels.csv").write_text("file,label\nfr_obama.jpg,happy\nfer_justin.jpg,neutral\n")
    out = tmp_path / "report"
    assert main(["evaluate", "--data", str(photos), "--out", str(out), "--limit", "1"]) == 0
    written = (out / "metrics.json").read_bytes()
    assert json.loads(written)["pictures"] == 1
    capsys.readouterr()
    assert main(["evaluate", "--data", str(photos), "--out", str(out)]) == 1
    assert "metrics.json already exists: choose another --out" in one_error_line(capsys)
    assert (out / "metrics.json").read_bytes() == written
