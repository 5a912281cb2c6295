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

from fercam.sources import VideoFileSource, WebcamSource, is_camera_index
from fercam.types import Frame


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


class StageClock:
    """CPU seconds (the whole process's: a model's own threads count) spent in each named stage, summed over a
    run: on a shared machine far steadier than wall time."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def timed(self, stage: str, call):
        """`call`, adding its time to `stage` each time it is called."""

        def run(*args, **kwargs):
            start = time.process_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.spent[stage] = self.spent.get(stage, 0.0) + time.process_time() - start

        return run

    def wrap(self, stage: str, inner, *methods: str):
        """A stand-in for `inner` whose `methods` are timed as `stage`; every other attribute is `inner`'s."""
        return _Timed(inner, {name: self.timed(stage, getattr(inner, name)) for name in methods})


class _Timed:
    def __init__(self, inner, timed: dict) -> None:
        self.__dict__.update(timed)
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)


# `fercam analyze`'s stages in the order a frame meets them (voice runs over the sound afterwards).
ANALYZE_STAGES = ("decode", "detect", "classify", "second opinion", "track", "body", "timeline", "write video", "voice")


def profile_analyze(spec: str, *, refresh="shipped", detector: str = "mtcnn", on_analysis=None) -> dict:
    """`fercam analyze`'s pipeline over one recording (the same reader, writers, annotated video and voice, into
    a temporary folder), timed: frames per second (wall) and CPU milliseconds per frame in each stage ("other":
    crops, alignment, overlay, bookkeeping). `refresh`: the second opinion's `RefreshRule` (None: every face of
    every frame), "shipped" for the app's own."""
    import tempfile

    from fercam.apps.analyze.analyze import InputResult, Options
    from fercam.apps.analyze.report import TimelineWriter
    from fercam.apps.analyze.sound import analyze_voice
    from fercam.body.timeline import BodyTimelineWriter
    from fercam.combined import load_combined_reading
    from fercam.detection import load_detector
    from fercam.pipeline import FaceReader, run_offline
    from fercam.settings import Settings
    from fercam.sinks import VideoFileSink
    from fercam.sources import open_source

    clock, settings = StageClock(), Settings(detector=detector)
    reading = load_combined_reading() if refresh == "shipped" else load_combined_reading(refresh=refresh)
    reading.classifier = clock.wrap("classify", reading.classifier, "predict_faces")
    reading.second = clock.wrap("second opinion", reading.second, "predict_aligned", "read_aligned")
    reader = FaceReader(clock.wrap("detect", load_detector(detector), "detect", "detect_near"), reading)
    reader.tracker = clock.wrap("track", reader.tracker, "update")
    source = open_source(spec)
    source.read = clock.timed("decode", source.read)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        timeline, body = TimelineWriter(folder / "timeline.csv"), BodyTimelineWriter(folder / "body_timeline.csv")
        write_timeline, write_body = clock.timed("timeline", timeline.write), clock.timed("body", body.write)
        video = VideoFileSink(folder / "annotated.mp4", fps=source.fps)
        video.send = clock.timed("write video", video.send)

        faces = [0]

        def analysed(analysis, frame) -> None:
            faces[0] += len(analysis.faces)
            write_timeline(analysis, frame)
            write_body(analysis, frame)
            if on_analysis:
                on_analysis(analysis, frame)

        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            frames = run_offline(source, reader, [video], settings, on_analysis=analysed)
        finally:
            video.close()
            timeline.close()
            body.close()
            source.close()
        frames_s, frames_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        analyze_voice(spec, folder, InputResult(spec), Options(progress=False), 0)
        voice_s = time.perf_counter() - start - frames_s
        clock.spent["voice"] = time.process_time() - cpu_start - frames_cpu_s
    n = max(1, frames)
    per_frame = {stage: round(1000 * clock.spent.get(stage, 0.0) / n, 2) for stage in ANALYZE_STAGES}
    per_frame["other"] = round(1000 * frames_cpu_s / n - sum(v for k, v in per_frame.items() if k != "voice"), 2)
    return {
        "input": spec,
        "frames": frames,
        "fps": round(frames / frames_s, 1) if frames_s > 0 else 0.0,  # the frame stage, as analyze's summary says
        "fps_with_voice": round(frames / (frames_s + voice_s), 1),
        "cpu_ms_per_frame": round(1000 * frames_cpu_s / n, 2),
        "cpu_ms_per_frame_by_stage": per_frame,
        "faces_read": faces[0],  # one a face a frame
        "second_opinions": reading.second_reads,
    }
