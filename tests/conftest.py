"""Shared fixtures: the test media (tests/media), the shared corpora, and fakes only where hardware is missing."""

from __future__ import annotations

import glob
import http.server
import os
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PYSTRAY_BACKEND", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

MEDIA = Path(__file__).resolve().parent / "media"  # small licensed photos and clips: see media/README.md
SHARED = Path(__file__).resolve().parents[1].parent / "shared"  # the large corpora, beside the project root


def _found(*patterns: str) -> bool:
    return any(glob.glob(pattern) for pattern in patterns)


def _typelib(name: str) -> bool:
    return _found(f"/usr/lib/*/girepository-1.0/{name}.typelib", f"/usr/lib/girepository-1.0/{name}.typelib")


# Debian's PyGObject as built for this Python (the Linux installer links it into the app's environment).
PYGOBJECT = f"/usr/lib/python3/dist-packages/gi/_gi.cpython-{sys.version_info.major}{sys.version_info.minor}*"
# The Debian packages tests use for real, each with how to tell it is installed (CI's .ci/run installs them all).
SYSTEM_PACKAGES = {
    "xvfb": lambda: shutil.which("Xvfb"),
    "openbox": lambda: shutil.which("openbox"),
    "tint2": lambda: shutil.which("tint2"),
    "xdotool": lambda: shutil.which("xdotool"),
    "imagemagick": lambda: shutil.which("import"),
    "dbus": lambda: shutil.which("dbus-run-session"),
    "chromium": lambda: os.path.exists("/usr/bin/chromium"),
    "python3-gi": lambda: _found(PYGOBJECT),
    "gir1.2-gtk-3.0": lambda: _typelib("Gtk-3.0"),
    "gir1.2-ayatanaappindicator3-0.1": lambda: _typelib("AyatanaAppIndicator3-0.1"),
    "ffmpeg": lambda: shutil.which("ffmpeg") and shutil.which("ffprobe"),
    "sox": lambda: shutil.which("sox"),
    "espeak-ng": lambda: shutil.which("espeak-ng"),
}


def requires_system_packages(*names: str) -> None:
    """Skip the calling test, naming the packages, when any of these system packages is missing."""
    missing = [name for name in names if not SYSTEM_PACKAGES[name]()]
    if missing:
        pytest.skip(f"needs the system package(s) {' '.join(missing)}: apt-get install {' '.join(missing)}")


@pytest.fixture(autouse=True)
def _private_settings(tmp_path, monkeypatch):
    """Never read or write the real user's settings from a test."""
    monkeypatch.setenv("FERCAM_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture(scope="session")
def media_dir() -> Path:
    return MEDIA


@pytest.fixture(scope="session")
def two_people_clip(media_dir, tmp_path_factory) -> Path:
    """Two people at once: fer_test.mp4 beside the first 115 frames of fer_woman2.mp4, at 25 fps."""
    import cv2

    path = tmp_path_factory.mktemp("media") / "two_people.mp4"
    left, right = (cv2.VideoCapture(str(media_dir / name)) for name in ("fer_test.mp4", "fer_woman2.mp4"))
    writer = None
    while (a := left.read()[1]) is not None and (b := right.read()[1]) is not None:
        frame = np.hstack([a, b])
        writer = writer or cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, frame.shape[1::-1])
        writer.write(frame)
    writer.release()
    left.release()
    right.release()
    return path


# Sentences espeak-ng speaks in several voices: speech made by the test, so no voice test needs a corpus for it.
SPOKEN = [
    ("en", "Good morning, I am so glad to see you all here today."),
    ("de", "Der Lappen liegt auf dem Eisschrank."),  # an EmoDB sentence
    ("en+f3", "Why did you do that? I told you not to touch it!"),
    ("en-us", "Oh no, I think something terrible has happened."),
    ("de+m3", "Heute abend könnte ich es ihm sagen."),  # an EmoDB sentence
]


@pytest.fixture(scope="session")
def spoken_clips(tmp_path_factory) -> list[np.ndarray]:
    """Five sentences spoken by espeak-ng in different voices, as int16 at 16 kHz, over a quiet room's hiss
    (-60 dBFS: a synthetic voice's pauses are exact zeros, which no microphone records)."""
    import subprocess

    from fercam.voice.audio import load_audio

    requires_system_packages("espeak-ng")
    folder = tmp_path_factory.mktemp("spoken")
    clips, hiss = [], np.random.default_rng(7)
    for i, (voice, text) in enumerate(SPOKEN):
        path = folder / f"{i}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
        speech = load_audio(path) * 32767
        clips.append(np.round(speech + hiss.normal(0, 30, len(speech))).astype(np.int16))
    return clips


@pytest.fixture(scope="session")
def fer_npz() -> Path:
    path = SHARED / "data" / "fer2013.npz"
    if not path.is_file():
        pytest.skip(f"FER2013 data not found at {path} (it sits beside the project root in CI)")
    return path


class FakeDetector:
    """Fixed boxes for every frame."""

    def __init__(self, boxes):
        from fercam.types import Box, Detection

        self.detections = [Detection(Box(*b), 0.99) for b in boxes]

    def detect(self, image):
        return list(self.detections)

    def detect_near(self, image, boxes):
        return list(self.detections)


class FakeClassifier:
    """Fixed probabilities, optionally slow, optionally failing."""

    def __init__(self, probs=None, *, delay: float = 0.0, error: Exception | None = None):
        self.probs = np.asarray(probs if probs is not None else [0, 0, 0, 1, 0, 0, 0], np.float32)
        self.delay, self.error = delay, error
        self.calls = 0

    def predict_faces(self, faces):
        self.calls += 1
        time.sleep(self.delay)
        if self.error:
            raise self.error
        return np.tile(self.probs, (len(faces), 1))


class ListSink:
    """Keeps every frame it is sent, with the time it arrived."""

    closed = False

    def __init__(self):
        self.frames, self.times, self.closed_calls = [], [], 0

    def send(self, image):
        self.frames.append(image)
        self.times.append(time.monotonic())

    def close(self):
        self.closed_calls += 1


class RecordingBackend:
    """A pyvirtualcam backend that records what the real `pyvirtualcam.Camera` sends."""

    instances: list = []

    def __init__(self, *, width, height, fps, fourcc, device, **kw):
        self.width, self.height, self.fps, self.fourcc = width, height, fps, fourcc
        self._device = device or "recording"
        self.frames: list[np.ndarray] = []
        self.closed = False
        RecordingBackend.instances.append(self)

    def send(self, frame):
        self.frames.append(frame.reshape(self.height, self.width, 3).copy())

    def close(self):
        self.closed = True

    def device(self):
        return self._device

    def native_fourcc(self):
        return None


@pytest.fixture
def recording_backend():
    import pyvirtualcam

    RecordingBackend.instances.clear()
    pyvirtualcam.register_backend("fercam-test", RecordingBackend)
    yield RecordingBackend
    pyvirtualcam.camera.BACKENDS.pop("fercam-test", None)


def count_frames(path) -> int:
    """How many frames of a video file decode."""
    import cv2

    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


def load_tool(name: str):
    """`tools/NAME.py` as a module, for tests of its functions (tools/ is not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, Path(__file__).parents[1] / "tools" / f"{name}.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return tool


class MjpegCamera:
    """An MJPEG camera on localhost (as IP cameras and phone webcam apps serve video) that can be stopped,
    dropping its connections, and started again on the same port."""

    def __init__(self, jpeg: bytes, fps: float = 30.0) -> None:
        self.jpeg, self.period = jpeg, 1 / fps
        self.port = _free_port()
        self.server: http.server.ThreadingHTTPServer | None = None

    def start(self) -> None:
        camera = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while camera.server is self.server:
                        part = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(camera.jpeg)}\r\n\r\n"
                        self.wfile.write(part.encode() + camera.jpeg + b"\r\n")
                        time.sleep(camera.period)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        server, self.server = self.server, None  # open responses see this and end their streams
        server.shutdown()
        server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/video.mjpg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
