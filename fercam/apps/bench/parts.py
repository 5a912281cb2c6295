"""The measuring parts of `fercam bench`: a webcam or a clip as a camera, a counting virtual-camera backend,
timed stages, process clocks, and the emotion model timed on its own."""

from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fercam.source_specs import is_camera_index
from fercam.sources import VideoFileSource, WebcamSource
from fercam.types import Frame


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; elsewhere since fercam was imported)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
        return float(open("/proc/uptime").read().split()[0]) - start
    except (OSError, ValueError, IndexError, AttributeError):
        import fercam

        return time.monotonic() - fercam.IMPORTED_AT


def current_rss_mb() -> float:
    """Resident memory now (Linux); the peak elsewhere."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        return peak_rss_mb() or 0.0


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class TiledSource:
    """A webcam (by index), or a clip replayed in real time, as a camera of `size`, tiled so that `faces`
    faces show."""

    live = True
    reconnects = False
    frame_count = None

    def __init__(self, spec: str, size: tuple[int, int], faces: int, fps: int, *, realtime: bool = True) -> None:
        if is_camera_index(spec):
            self._input = WebcamSource(int(spec), width=size[0], height=size[1], fps=fps)
        else:
            self._input = VideoFileSource(spec, realtime=realtime, loop=True)
        self.size, self.faces, self.fps, self.name = size, max(1, faces), fps, spec
        self.cols = math.ceil(math.sqrt(self.faces))
        self.rows = math.ceil(self.faces / self.cols)

    def read(self) -> Frame | None:
        frame = self._input.read()
        if frame is None:
            return None
        width, height = self.size
        if self.faces == 1:  # what a webcam at this size gives: one resize, no tiling
            return Frame(
                cv2.resize(frame.image, self.size, interpolation=cv2.INTER_LINEAR), frame.index, frame.timestamp
            )
        cell_w, cell_h = width // self.cols, height // self.rows
        cell = cv2.resize(frame.image, (cell_w, cell_h), interpolation=cv2.INTER_LINEAR)
        image = np.zeros((height, width, 3), np.uint8)
        for i in range(self.faces):
            r, c = divmod(i, self.cols)
            image[r * cell_h : (r + 1) * cell_h, c * cell_w : (c + 1) * cell_w] = cell
        return Frame(image, frame.index, frame.timestamp)

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self._input.close()


class CountingBackend:
    """A pyvirtualcam backend that only counts: what a call app would receive, minus the driver."""

    frames = 0

    def __init__(self, *, width, height, fps, fourcc, device, **kw) -> None:
        self._device = device or "FER Cam (bench)"

    def send(self, frame) -> None:
        CountingBackend.frames += 1

    def close(self) -> None:
        pass

    def device(self) -> str:
        return self._device

    def native_fourcc(self):
        return None


class TimedDetector:
    """Records how long full scans and tracked searches take (milliseconds)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.full_ms: list[float] = []
        self.near_ms: list[float] = []

    def detect(self, image):
        start = time.perf_counter()
        found = self.inner.detect(image)
        self.full_ms.append((time.perf_counter() - start) * 1000)
        return found

    def detect_near(self, image, boxes):
        start = time.perf_counter()
        found = self.inner.detect_near(image, boxes)
        self.near_ms.append((time.perf_counter() - start) * 1000)
        return found


class TimedClassifier:
    """Records the classifier's milliseconds per face."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.ms_per_face: list[float] = []
        self.faces = 0  # faces classified: each face's refresh rate is faces / seconds / faces in view

    def predict_faces(self, faces):
        start = time.perf_counter()
        probs = self.inner.predict_faces(faces)
        self._record(start, len(faces))
        return probs

    def _record(self, start: float, faces: int) -> None:
        if faces:
            self.ms_per_face.append((time.perf_counter() - start) * 1000 / faces)
            self.faces += faces


class TimedReading(TimedClassifier):
    """The same for a reading of whole pictures (a `FaceClassifier`: the combined reading the app runs)."""

    def __init__(self, inner) -> None:
        super().__init__(inner)
        self.unsure_below = inner.unsure_below

    def classify(self, bgr_image, detections, timestamp=None):
        start = time.perf_counter()
        probs = self.inner.classify(bgr_image, detections, timestamp)
        self._record(start, len(detections))
        return probs

    def forget(self) -> None:
        self.inner.forget()


def process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 2) if values else None


# The emotion model's own goals (issue: per face <= 1 ms at batch size 1, load <= 0.5 s, file <= 10 MB).
MODEL_GOALS = {"ms_per_face": 1.0, "load_s": 0.5, "file_mb": 10.0}


def bench_model(path: str | None = None, *, repeats: int = 1000) -> dict:
    """First load time (LiteRT import included), milliseconds per face at batch size 1 (as the app
    runs it: face and mirror image in one two-thread call) and file size."""
    from fercam.emotion import DEFAULT_MODEL, load_classifier
    from fercam.paths import model_file

    path = path or str(model_file(DEFAULT_MODEL))
    start = time.perf_counter()
    classifier = load_classifier(path)
    load_s = time.perf_counter() - start
    face = np.random.default_rng(0).integers(0, 256, (1, 48, 48), dtype=np.uint8)
    for _ in range(50):  # warm-up: first calls plan the delegate's kernels
        classifier.predict_faces(face)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        classifier.predict_faces(face)
        times.append(time.perf_counter() - start)
    result = {
        "model": path,
        "ms_per_face": round(1000 * float(np.median(times)), 3),
        "ms_per_face_p95": round(1000 * float(np.percentile(times, 95)), 3),
        "load_s": round(load_s, 3),
        "file_mb": round(Path(path).stat().st_size / 1e6, 2),
    }
    result["meets_goals"] = all(result[key] <= goal for key, goal in MODEL_GOALS.items())
    return result


def format_model_report(result: dict) -> str:
    lines = [f"fercam bench --model: {result['model']}"]
    for key, goal in MODEL_GOALS.items():
        lines.append(f"  {key:16s} {result[key]:>8}  (goal <= {goal}) {'ok' if result[key] <= goal else 'MISSED'}")
    lines.append(f"  {'ms_per_face_p95':16s} {result['ms_per_face_p95']:>8}")
    return "\n".join(lines)
