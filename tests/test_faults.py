"""Faults done for real: signals to a real child process, a file-size limit for a full disk, a network
camera whose server stops and comes back, and outputs that would overwrite the input."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import ListSink, MjpegCamera, count_frames

from fercam.apps.cli import main
from fercam.live import LiveRunner
from fercam.pipeline import make_face_reader
from fercam.settings import Settings, SettingsStore
from fercam.sinks import TeeSink, VideoFileSink
from fercam.sources import open_source

ROOT = Path(__file__).resolve().parents[1]


def start_recording(clip: Path, out: Path, *extra: str, **popen) -> subprocess.Popen:
    """`fercam run` in LIVE mode (the clip paced like a camera) into `out`, as its own process."""
    command = [sys.executable, "-m", "fercam", "run", "--no-tray", "--mode", "live", "--source", str(clip)]
    command += ["--sink", f"file:{out}", *extra]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    popen.setdefault("preexec_fn", _ctrl_c_as_from_a_terminal)
    return subprocess.Popen(command, cwd=out.parent, env=env, stderr=subprocess.PIPE, text=True, **popen)


def _ctrl_c_as_from_a_terminal() -> None:
    """A job started in the background inherits SIGINT ignored (POSIX), and Python keeps it so; a command typed
    in a terminal gets it by default. The test runner may be either, the user's `fercam run` is the second."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for_file(path: Path, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.stat().st_size > 0):
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT], ids=lambda s: s.name)
def test_a_stopped_recording_is_finished_and_readable(signum, media_dir, tmp_path):
    out = tmp_path / "out.mp4"
    process = start_recording(media_dir / "fer_woman2.mp4", out)
    wait_for_file(out, process)
    time.sleep(2.0)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert err.strip().splitlines()[-1] == f"fercam: stopped by {signum.name}"
    assert count_frames(out) >= 15  # readable to the end (fewer than 60 frames only on a starved CPU)


def test_a_recording_killed_after_10_s_keeps_at_least_8_s(media_dir, tmp_path):
    out = tmp_path / "out.mp4"
    process = start_recording(media_dir / "fer_woman2.mp4", out)
    wait_for_file(out, process)  # the first frame is in: the recording has started
    time.sleep(10.0)
    process.kill()  # SIGKILL: no handler runs, nothing is finished
    process.wait(timeout=30)
    assert count_frames(out) >= 8 * 29.97


def _limit_file_size() -> None:
    resource.setrlimit(resource.RLIMIT_FSIZE, (400_000, 400_000))  # a disk that is full after 400 kB


def test_a_full_disk_stops_with_one_line_and_keeps_what_was_written(media_dir, tmp_path):
    out = tmp_path / "out.mp4"
    command = [sys.executable, "-m", "fercam", "run", "--no-tray", "--source", str(media_dir / "fer_woman2.mp4")]
    done = subprocess.run(
        [*command, "--sink", f"file:{out}"],
        cwd=tmp_path,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=_limit_file_size,
    )
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("fercam: error: cannot write video file") and "Traceback" not in done.stderr
    assert count_frames(out) >= 30  # everything before the disk filled up


def test_the_input_is_never_the_output(media_dir, tmp_path, capsys):
    clip = tmp_path / "talk.mp4"
    clip.write_bytes((media_dir / "fer_test.mp4").read_bytes())
    (tmp_path / "link.mp4").symlink_to(clip)
    before = clip.read_bytes()
    for sink in (f"file:{clip}", f"file:{tmp_path / 'link.mp4'}", f"file:{tmp_path / '.' / 'talk.mp4'}"):
        assert main(["run", "--no-tray", "--source", str(clip), "--sink", sink, "--overwrite"]) == 1
        assert "is the input" in capsys.readouterr().err
    assert clip.read_bytes() == before


def test_an_existing_output_is_replaced_only_with_overwrite(media_dir, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"the user's earlier recording")
    args = ["run", "--no-tray", "--source", str(media_dir / "fer_justin.jpg"), "--sink", f"file:{out}"]
    assert main(args) == 1
    assert "already exists; add --overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"the user's earlier recording"
    assert main([*args, "--overwrite"]) == 0 and count_frames(out) == 1


def test_a_network_camera_outage_is_recorded_at_full_rate_and_the_camera_comes_back(media_dir, tmp_path):
    image = cv2.imread(str(media_dir / "fer_justin.jpg"))
    camera = MjpegCamera(cv2.imencode(".jpg", cv2.resize(image, (320, 240)))[1].tobytes())
    camera.start()
    out, clock = tmp_path / "out.mp4", ListSink()
    settings = Settings(width=640, height=480, fps=30, detector="yunet")  # not the camera's size
    runner = LiveRunner(
        open_source(camera.url), TeeSink([VideoFileSink(out), clock]), SettingsStore(initial=settings), make_face_reader
    )
    threading.Timer(2.0, camera.stop).start()
    threading.Timer(5.0, camera.start).start()
    try:
        runner.run(max_frames=240)
    finally:
        runner.sink.close()
        camera.stop()
    frames = _read_all(out)
    assert len(frames) == 240 and {f.shape for f in frames} == {(240, 320, 3)}  # every frame, one size
    beats = np.diff(clock.times[30:])  # once running, the output keeps its beat, outage or not:
    assert np.percentile(beats, 90) < 0.05 and np.max(beats) < 0.5  # (a stall of the scheduler is not the outage)
    message = [i for i, f in enumerate(frames) if _is_message(f)]
    assert len(message) >= 60  # the 3 s outage is in the recording, at the output's rate
    assert np.median(np.diff(np.asarray(clock.times)[message])) == pytest.approx(1 / 30, abs=0.01)
    assert message[-1] < 230 and not _is_message(frames[-1])  # and the camera's picture came back


def _read_all(path: Path) -> list:
    capture, frames = cv2.VideoCapture(str(path)), []
    while True:
        ok, frame = capture.read()
        if not ok:
            return frames
        frames.append(frame)


def _is_message(frame) -> bool:
    return abs(int(frame[2, 2, 0]) - 32) < 8 and abs(int(frame[2, 2, 2]) - 32) < 8  # the dark message frame


def test_a_damaged_model_file_is_named_in_one_line(tmp_path, monkeypatch, media_dir, capsys):
    import fercam.detection.mtcnn
    from fercam.paths import model_file

    broken = tmp_path / "models"
    broken.mkdir()
    for name in ("mtcnn_pnet.tflite", "mtcnn_rnet.tflite", "mtcnn_onet.tflite"):
        (broken / name).write_bytes(model_file(name).read_bytes())
    (broken / "mtcnn_rnet.tflite").write_bytes(b"\0" * 4096)  # a truncated download, a bad disk
    monkeypatch.setattr(fercam.detection.mtcnn, "model_file", lambda name: broken / name)
    args = ["run", "--no-tray", "--source", str(media_dir / "fer_justin.jpg"), "--sink", f"file:{tmp_path / 'o.mp4'}"]
    assert main(args) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "mtcnn_rnet.tflite" in line and "not a LiteRT model" in line


def _faststart_copy(clip: Path, out: Path) -> None:
    """The clip remuxed with its index in front, as phones and web video write it."""
    import av

    with av.open(str(clip)) as src, av.open(str(out), "w", options={"movflags": "faststart"}) as dst:
        stream = dst.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                dst.mux(packet)


def test_a_truncated_video_is_reported_with_the_frames_read(media_dir, tmp_path, caplog):
    whole = tmp_path / "whole.mp4"
    _faststart_copy(media_dir / "fer_woman2.mp4", whole)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 3])  # a copy that stopped a third of the way
    assert main(["run", "--no-tray", "--source", str(cut), "--sink", f"file:{tmp_path / 'out.mp4'}"]) == 0
    (warning,) = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage()]  # "fercam: ..." on stderr
    assert warning.startswith("cut.mp4 is truncated: read ") and "of the 464 frames its header declares" in warning


def test_a_video_file_over_http_that_stalls_ends_instead_of_blocking_the_video(media_dir, tmp_path, monkeypatch):
    import fercam.sources
    from fercam.contracts import SourceError
    from fercam.sources import VideoFileSource

    whole = tmp_path / "whole.mp4"
    _faststart_copy(media_dir / "fer_woman2.mp4", whole)
    data = whole.read_bytes()
    server, held, done = socket.create_server(("127.0.0.1", 0)), [], threading.Event()

    def serve() -> None:  # the whole length announced, a third of it sent, then silence with the connection open
        while not done.is_set():
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.recv(65536)
            head = f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {len(data)}\r\n\r\n"
            connection.sendall(head.encode() + data[: len(data) // 3])
            held.append(connection)

    def play() -> None:
        try:
            source = VideoFileSource(f"http://127.0.0.1:{server.getsockname()[1]}/whole.mp4")
        except SourceError:  # the stall came before the first frame
            return
        while source.read() is not None:
            pass
        source.close()

    monkeypatch.setattr(fercam.sources, "NETWORK_TIMEOUT_S", 1.0)
    threading.Thread(target=serve, daemon=True).start()
    player = threading.Thread(target=play, daemon=True)
    started = time.monotonic()
    player.start()
    player.join(timeout=10)
    done.set()
    server.close()
    for connection in held:
        connection.close()
    assert not player.is_alive(), "a stalled HTTP file held the video thread"
    print(f"a stalled HTTP file ended after {time.monotonic() - started:.1f} s")


def test_a_paced_clip_resumes_after_a_stall_without_a_burst(media_dir):
    from fercam.sources import VideoFileSource

    source = VideoFileSource(media_dir / "fer_test.mp4", realtime=True)
    first = [source.read() for _ in range(3)]
    time.sleep(0.5)  # the machine stalls (or the laptop sleeps) for a while
    started = time.monotonic()
    after = [source.read() for _ in range(6)]
    source.close()
    assert time.monotonic() - started >= 4 / 25  # still paced like a camera ...
    assert all(b.timestamp > a.timestamp for a, b in zip(first + after, (first + after)[1:]))  # ... in order
