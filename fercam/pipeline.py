"""One pipeline, three running modes (the MediaPipe way), chosen by the caller.

- OFFLINE: every frame in order, each analysed (or every N-th): files and `fercam analyze`.
- IMAGE: independent pictures; no tracking or smoothing carries over from one to the next.
- LIVE: newest frame wins; video and analysis run on their own threads (`fercam.live`).

Every mode runs the same steps, written once here: `prepare` (mirror), the FaceReader
(detect -> crop -> classify -> track) and `render` (annotate), then the sink's `send`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from enum import Enum

import cv2
import numpy as np

from fercam.annotate import annotate
from fercam.contracts import Detector, EmotionClassifier, Sink, Source
from fercam.settings import Settings
from fercam.tracking import FaceTracker
from fercam.types import EMOTIONS, Analysis, Box, Detection, Face, Frame

log = logging.getLogger(__name__)

CROP_SCALE = 1.1  # FER2013 faces show a little forehead and chin beyond the detector's box


class Mode(Enum):
    OFFLINE = "offline"
    IMAGE = "image"
    LIVE = "live"


def face_crops(gray: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
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


def classify(image: np.ndarray, detections: Sequence[Detection], classifier: EmotionClassifier) -> np.ndarray:
    """(N, 7) probabilities for the detected faces of one BGR image: the crop the model was trained on."""
    if not detections:
        return np.zeros((0, len(EMOTIONS)), np.float32)
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    return classifier.predict_faces(face_crops(gray, [d.box for d in detections]))


def read_image(image: np.ndarray, detector: Detector, classifier: EmotionClassifier) -> tuple[Face, ...]:
    """The faces of one picture, numbered from 1 in the detector's order: no tracking, no smoothing."""
    detections = detector.detect(image)
    probs = classify(image, detections, classifier)
    return tuple(Face(i + 1, d.box, d.score, p) for i, (d, p) in enumerate(zip(detections, probs)))


class FaceReader:
    """detect -> crop -> classify -> track: one frame in, one Analysis out.

    Between full scans (every `rescan_s`) only the neighbourhood of the tracked faces is
    searched (`Detector.detect_near`), which is several times cheaper.
    """

    def __init__(
        self, detector: Detector, classifier: EmotionClassifier, *, tracker: FaceTracker | None = None, rescan_s=0.5
    ) -> None:
        self.detector, self.classifier = detector, classifier
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

    def read(self, frame: Frame) -> Analysis:
        detections = self.detect(frame)
        faces = self.tracker.update(detections, classify(frame.image, detections, self.classifier), frame.timestamp)
        return Analysis(frame.index, frame.timestamp, faces)


def make_face_reader(settings: Settings) -> FaceReader:
    """The real detector and classifier the settings choose (loads models: call it off the video thread)."""
    from fercam.detection import load_detector
    from fercam.emotion import load_classifier

    return FaceReader(load_detector(settings.detector), load_classifier())


def prepare(frame: Frame, settings: Settings) -> Frame:
    """The frame as it will be analysed and sent: flipped when the user asked for a mirrored output."""
    return Frame(cv2.flip(frame.image, 1), frame.index, frame.timestamp) if settings.mirror else frame


def render(
    frame: Frame, analysis: Analysis | None, settings: Settings, *, stale: bool = False, voice=None
) -> np.ndarray:
    """The image the sinks receive: the frame with the chosen overlays."""
    return annotate(frame.image, analysis, settings, stale=stale, voice=voice)


def run_offline(
    source: Source,
    reader: FaceReader,
    sinks: Sequence[Sink],
    settings: Settings,
    *,
    mode: Mode = Mode.OFFLINE,
    every: int = 1,
    max_frames: int = 0,
    max_seconds: float = 0,
    on_analysis: Callable[[Analysis, Frame], None] | None = None,
) -> int:
    """OFFLINE or IMAGE mode: every frame in order; analyses every `every`-th. Returns the frame count."""
    analysis, count = None, 0
    while not max_frames or count < max_frames:
        frame = source.read()
        if frame is None or (max_seconds and frame.timestamp >= max_seconds):
            break
        frame = prepare(frame, settings)
        if count % every == 0:
            if mode is Mode.IMAGE:
                reader.tracker = FaceTracker()  # unrelated pictures: nothing carries over
            analysis = reader.read(frame)
            if on_analysis:
                on_analysis(analysis, frame)
        image = render(frame, analysis, settings)
        for sink in sinks:
            sink.send(image)
        count += 1
    return count
