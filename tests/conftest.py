"""Shared fixtures: the shared media and data, and fakes only where hardware is missing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("PYSTRAY_BACKEND", "dummy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture(autouse=True)
def _private_settings(tmp_path, monkeypatch):
    """Never read or write the real user's settings from a test."""
    monkeypatch.setenv("FERCAM_CONFIG_DIR", str(tmp_path / "config"))


@pytest.fixture(scope="session")
def media_dir() -> Path:
    folder = SHARED / "media"
    if not folder.is_dir():
        pytest.skip(f"shared media not found at {folder} (it sits beside the project root in CI)")
    return folder


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
