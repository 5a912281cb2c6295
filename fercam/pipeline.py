"""One pipeline, two running modes.

Offline: every frame, in order, analysed then annotated (files, analysis).
Live: the video thread reads, annotates with the newest analysis and sends, paced by
the camera; an inference thread analyses the newest frame. A one-slot box between
them drops stale frames instead of queueing them, so the video never waits for the model.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from fercam.annotate import annotate
from fercam.settings import Settings
from fercam.tracking import FaceTracker
from fercam.types import Analysis, Box, Detection, Frame

log = logging.getLogger(__name__)

CROP_SCALE = 1.1  # FER2013 faces show a little forehead and chin beyond the detector's box


def face_crops(gray: np.ndarray, boxes: list[Box]) -> list[np.ndarray]:
    """Square gray crops centred on each box, padded by edge replication at the image border."""
    crops = []
    for box in boxes:
        (cx, cy), side = box.center, max(box.width, box.height) * CROP_SCALE
        x1, y1 = round(cx - side / 2), round(cy - side / 2)
        x2, y2 = x1 + max(1, round(side)), y1 + max(1, round(side))
        pad = max(0, -x1, -y1, x2 - gray.shape[1], y2 - gray.shape[0])
        source = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else gray
        crops.append(np.ascontiguousarray(source[y1 + pad : y2 + pad, x1 + pad : x2 + pad]))
    return crops


class Analyzer:
    """detect -> crop -> classify -> track: one frame in, one Analysis out.

    Between full scans (every `rescan_s`) a detector that can `detect_near` only searches
    around the faces already tracked, which is several times cheaper.
    """

    def __init__(self, detector, classifier, *, tracker: FaceTracker | None = None, rescan_s: float = 0.5) -> None:
        self.detector = detector
        self.classifier = classifier
        self.tracker = tracker or FaceTracker()
        self.rescan_s = rescan_s
        self._last_scan: float | None = None

    def detect(self, frame: Frame) -> list[Detection]:
        due = self._last_scan is None or not 0 <= frame.timestamp - self._last_scan < self.rescan_s
        if self.tracker.boxes and not due:
            found = self.detector.detect_near(frame.image, self.tracker.boxes)
            if len(found) >= len(self.tracker.boxes):
                return found
        self._last_scan = frame.timestamp
        return self.detector.detect(frame.image)

    def analyze(self, frame: Frame) -> Analysis:
        detections = self.detect(frame)
        probs = np.zeros((0, 7), np.float32)
        if detections:
            gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            probs = self.classifier.predict_faces(face_crops(gray, [d.box for d in detections]))
        faces = self.tracker.update(detections, probs, frame.timestamp)
        return Analysis(frame.index, frame.timestamp, faces)


def mirrored(frame: Frame) -> Frame:
    return Frame(cv2.flip(frame.image, 1), frame.index, frame.timestamp)


def run_offline(
    source,
    analyzer: Analyzer,
    sinks: list,
    settings: Settings,
    *,
    every: int = 1,
    max_frames: int = 0,
    max_seconds: float = 0,
    on_analysis: Callable[[Analysis, Frame], None] | None = None,
) -> int:
    """Every frame in order; analyses every `every`-th frame. Returns the number of frames."""
    analysis, count = None, 0
    while not max_frames or count < max_frames:
        frame = source.read()
        if frame is None or (max_seconds and frame.timestamp >= max_seconds):
            break
        frame = mirrored(frame) if settings.mirror else frame
        if count % every == 0:
            analysis = analyzer.analyze(frame)
            if on_analysis:
                on_analysis(analysis, frame)
        image = annotate(frame.image, analysis, settings)
        for sink in sinks:
            sink.send(image)
        count += 1
    return count


class LatestSlot:
    """A one-value box: writers replace, readers wait for something newer than they saw."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value = None
        self.version = 0

    def put(self, value) -> None:
        with self._cond:
            self._value, self.version = value, self.version + 1
            self._cond.notify_all()

    def get(self):
        return self._value

    def wait_newer(self, seen: int, timeout: float) -> tuple[int, object]:
        with self._cond:
            self._cond.wait_for(lambda: self.version > seen, timeout)
            return self.version, self._value


@dataclass
class LiveStats:
    """What the tray's status line and `fercam bench` report."""

    frames_sent: int = 0
    analyses: int = 0
    faces: int = 0
    error: str = ""
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    sent_times: deque = field(default_factory=lambda: deque(maxlen=120))
    analysis_times: deque = field(default_factory=lambda: deque(maxlen=120))
    analysis_ms: deque = field(default_factory=lambda: deque(maxlen=2000))  # busy time per analysis
    first_frame_at: float | None = None
    first_annotated_at: float | None = None

    @staticmethod
    def _rate(times: deque) -> float:
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    @property
    def fps(self) -> float:
        return self._rate(self.sent_times)

    @property
    def analysis_hz(self) -> float:
        return self._rate(self.analysis_times)

    def status_line(self) -> str:
        state = f"error: {self.error}" if self.error else f"{self.faces} face{'s' if self.faces != 1 else ''}"
        return f"{self.fps:.0f} fps, {state}"
