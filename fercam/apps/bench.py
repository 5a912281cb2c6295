"""`fercam bench`: the real live pipeline on a clip replayed as a 30 fps camera, measured.

Frames go through the real `pyvirtualcam.Camera` into a recording backend, so the
numbers include everything a user's call app would wait for.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fercam.live import LiveRunner
from fercam.settings import Settings, SettingsStore
from fercam.sources import VideoFileSource
from fercam.types import Frame

BENCH_BACKEND = "fercam-bench"


@dataclass(frozen=True)
class BenchConfig:
    source: str
    size: tuple[int, int] = (1280, 720)
    faces: int = 1
    detector: str = "mtcnn"
    seconds: float = 10.0
    fps: int = 30
    compare: bool = False


def process_age_s() -> float:
    """Seconds since this process started (Linux /proc; elsewhere since fercam was imported)."""
    try:
        import os

        ticks = os.sysconf("SC_CLK_TCK")
        start = int(open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]) / ticks
        return float(open("/proc/uptime").read().split()[0]) - start
    except (OSError, ValueError, IndexError, AttributeError):
        import fercam

        return time.monotonic() - fercam.IMPORTED_AT


def peak_rss_mb() -> float | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


class TiledSource:
    """A clip replayed in real time as a camera of `size`, tiled so that `faces` faces show."""

    live = True
    reconnects = False
    frame_count = None

    def __init__(self, path: str, size: tuple[int, int], faces: int, fps: int) -> None:
        self._clip = VideoFileSource(path, realtime=True, loop=True)
        self._clip._capture.set(cv2.CAP_PROP_FPS, fps)
        self.size, self.faces, self.fps, self.name = size, max(1, faces), fps, path
        self.cols = math.ceil(math.sqrt(self.faces))
        self.rows = math.ceil(self.faces / self.cols)

    def read(self) -> Frame | None:
        frame = self._clip.read()
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
        self._clip.close()


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
        if len(faces):
            self.ms_per_face.append((time.perf_counter() - start) * 1000 / len(faces))
            self.faces += len(faces)
        return probs


def _process_cpu_s() -> float:
    times = os.times()
    return times.user + times.system


def _mean(values: list[float]) -> float | None:
    return round(float(np.mean(values)), 2) if values else None


def run_bench(config: BenchConfig) -> dict:
    """Run the live pipeline for `config.seconds` and return the measured figures."""
    import pyvirtualcam

    from fercam.pipeline import make_live_reader
    from fercam.sinks import VirtualCameraSink

    origin = time.monotonic() - process_age_s()
    pyvirtualcam.register_backend(BENCH_BACKEND, CountingBackend)
    width, height = config.size
    source = TiledSource(config.source, config.size, config.faces, config.fps)
    sink = VirtualCameraSink(width=width, height=height, fps=config.fps, backend=BENCH_BACKEND)
    timers: dict = {}

    def timed_reader(settings: Settings):
        reader = make_live_reader(settings)
        reader.detector = timers["detector"] = TimedDetector(reader.detector)
        reader.classifier = timers["classifier"] = TimedClassifier(reader.classifier)
        return reader

    store = SettingsStore(initial=Settings(detector=config.detector, width=width, height=height, fps=config.fps))
    runner = LiveRunner(source, sink, store, timed_reader)
    threading.Timer(config.seconds, runner.stop).start()
    cpu_start = _process_cpu_s()
    try:
        runner.run()
    finally:
        end = time.monotonic()
        timers["cpu_s"] = _process_cpu_s() - cpu_start
        source.close()
        sink.close()
        pyvirtualcam.camera.BACKENDS.pop(BENCH_BACKEND, None)  # never offer the counter as a real camera
    result = _figures(runner, timers, origin, end, config)
    if config.compare:
        result.update(compare_reference(config, result))
    return result


def _figures(runner: LiveRunner, timers: dict, origin: float, end: float, config: BenchConfig) -> dict:
    stats = runner.stats
    latencies = np.array(stats.latencies_ms) if stats.latencies_ms else np.zeros(1)
    steady = end - (stats.first_annotated_at or end)
    detector, classifier = timers.get("detector"), timers.get("classifier")
    return {
        "size": f"{config.size[0]}x{config.size[1]}",
        "faces": config.faces,
        "detector": config.detector,
        "seconds": config.seconds,
        "output_fps": round(stats.frames_sent / max(1e-9, end - (stats.first_frame_at or end)), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 2),
        "analysis_hz": round(stats.analyses / steady, 2) if steady > 0 else 0.0,
        # How often it could refresh if frames came faster: analysis_hz is capped by the camera's rate.
        "analysis_capacity_hz": round(1000 / float(np.mean(stats.analysis_ms)), 1) if stats.analysis_ms else 0.0,
        "detector_ms": _mean((detector.full_ms + detector.near_ms) if detector else []),
        "detector_full_scan_ms": _mean(detector.full_ms if detector else []),
        "detector_tracked_ms": _mean(detector.near_ms if detector else []),
        "full_scans_per_s": round(len(detector.full_ms) / steady, 2) if detector and steady > 0 else 0,
        "classifier_ms_per_face": _mean(classifier.ms_per_face if classifier else []),
        "emotion_refresh_hz_per_face": round(classifier.faces / steady / config.faces, 1)
        if classifier and steady > 0
        else 0,
        "first_frame_s": round(stats.first_frame_at - origin, 3) if stats.first_frame_at else None,
        "first_annotated_s": round(stats.first_annotated_at - origin, 3) if stats.first_annotated_at else None,
        "rss_mb": peak_rss_mb(),
        # CPU seconds per wall second for the whole process (clip decoding included), and per stage.
        "cpu_cores": round(timers["cpu_s"] / config.seconds, 3),
        "cpu_cores_by_stage": {k: round(v / config.seconds, 3) for k, v in sorted(stats.cpu_s.items())},
        "frames_received": CountingBackend.frames,
    }


def compare_reference(config: BenchConfig, result: dict, frames: int = 8) -> dict:
    """Time the `mtcnn` package's detect_faces on the same frames (needs fercam[train])."""
    from fercam.detection import load_detector

    source = TiledSource(config.source, config.size, config.faces, config.fps)
    source._clip.realtime = False
    images = [source.read().image for _ in range(frames + 1)]
    source.close()
    reference = load_detector("mtcnn-reference")
    reference.detect(images[0])  # warm-up: graph building is not detection time
    start = time.perf_counter()
    for image in images[1:]:
        reference.detect(image)
    reference_ms = (time.perf_counter() - start) * 1000 / frames
    reference_hz = 1000 / reference_ms
    return {
        "reference_detector_ms": round(reference_ms, 2),
        "reference_hz": round(reference_hz, 2),
        "analysis_speedup": round(result["analysis_capacity_hz"] / reference_hz, 1),
        "camera_limited_speedup": round(result["analysis_hz"] / reference_hz, 1),
        "detector_speedup": round(reference_ms / result["detector_ms"], 1) if result["detector_ms"] else None,
    }


def format_report(result: dict) -> str:
    lines = [f"fercam bench: {result['size']}, {result['faces']} face(s), detector {result['detector']}"]
    lines += [f"  {key:24s} {value}" for key, value in result.items() if key not in ("size", "faces", "detector")]
    if "analysis_speedup" in result:
        lines.append(
            f"  => analysis can run {result['analysis_speedup']}x as often as the reference MTCNN in this run "
            f"({result['camera_limited_speedup']}x at this camera's {result['analysis_hz']} Hz)"
        )
    return "\n".join(lines)


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
