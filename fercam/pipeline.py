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
from dataclasses import dataclass, replace
from enum import Enum

import cv2
import numpy as np

from fercam.annotate import annotate
from fercam.cadence import Cadence, MotionMeter
from fercam.contracts import CueReader, Detector, EmotionClassifier, FaceClassifier, Sink, Source
from fercam.crops import face_crops
from fercam.defaults import DEFAULT_DETECTOR
from fercam.overlap import InOrder, ReadAhead
from fercam.settings import Settings
from fercam.tracking import FaceTracker
from fercam.types import EMOTIONS, Analysis, Detection, Face, Frame
from fercam.voice_marks import draw_heard_voice

log = logging.getLogger(__name__)

# OFFLINE reads each face on every frame in one view, the face and its mirror image on alternate frames: half the
# cost of both views on each frame, and on fer_woman2 97.2% of frames show main's label (both views every other
# frame, the same cost: 90.3%): consecutive frames barely differ, and the tracker averages the two views over time.
OFFLINE_VIEWS = "alternating"


class Mode(Enum):
    OFFLINE = "offline"
    IMAGE = "image"
    LIVE = "live"


@dataclass(frozen=True)
class ReaderConfig:
    """What the face reader takes from the user's settings: the stages never see the whole settings file."""

    detector: str = DEFAULT_DETECTOR

    @classmethod
    def from_settings(cls, settings: Settings) -> ReaderConfig:
        return cls(detector=settings.detector)


Classifier = EmotionClassifier | FaceClassifier


def classify(
    image: np.ndarray, detections: Sequence[Detection], classifier: Classifier, timestamp: float | None = None
) -> np.ndarray:
    """(N, 7) probabilities for the detected faces of one BGR image: the crop the model was trained on,
    or the whole picture and the detections for a reading that needs them (a `FaceClassifier`; with the
    frame's `timestamp` it may reuse what it read of the same faces recently)."""
    if not detections:
        return np.zeros((0, len(EMOTIONS)), np.float32)
    if isinstance(classifier, FaceClassifier):
        return classifier.classify(image, detections, timestamp)
    return classifier.predict_faces(face_crops(image, [d.box for d in detections]))


def mark_unsure(faces: tuple[Face, ...], classifier: Classifier) -> tuple[Face, ...]:
    """The faces, flagged `unsure` where the reading's confidence is under its fitted threshold."""
    if not isinstance(classifier, FaceClassifier):
        return faces  # a bare emotion model has no fitted threshold: it is never "unsure"
    return tuple(replace(f, unsure=f.confidence < classifier.unsure_below) for f in faces)


def read_image(image: np.ndarray, detector: Detector, classifier: Classifier) -> tuple[Face, ...]:
    """The faces of one picture, numbered from 1 in the detector's order: no tracking, no smoothing."""
    detections = detector.detect(image)
    probs = classify(image, detections, classifier)
    faces = tuple(Face(i + 1, d.box, d.score, p) for i, (d, p) in enumerate(zip(detections, probs)))
    return mark_unsure(faces, classifier)


class FaceReader:
    """detect -> crop -> classify -> track: one frame in, one Analysis out.

    Every frame is classified; between full scans (every `rescan_s`) only the neighbourhood of the
    tracked faces is searched (`Detector.detect_near`), which is several times cheaper. With a
    `cadence` (LIVE mode) still faces keep their boxes, scans follow motion elsewhere, and each face
    is re-classified only when it is due (`fercam.cadence`). In IMAGE `mode` each frame is an unrelated
    picture: the reader forgets the last one first, so nothing carries over.
    """

    def __init__(
        self,
        detector: Detector,
        classifier: Classifier,
        *,
        tracker: FaceTracker | None = None,
        rescan_s: float = 0.5,
        cadence: Cadence | None = None,
        mode: Mode = Mode.OFFLINE,
    ) -> None:
        self.detector, self.classifier, self.mode = detector, classifier, mode
        self.tracker = tracker or FaceTracker()
        self.rescan_s = cadence.rescan_s if cadence else rescan_s
        self.cadence = cadence
        self.motion = MotionMeter(cadence) if cadence else None
        self._last_scan: float | None = None

    def detect(self, frame: Frame) -> list[Detection]:
        tracked = self.tracker.boxes
        due = self._last_scan is None or not 0 <= frame.timestamp - self._last_scan < self.rescan_s
        if self.motion is not None and not due and not self.motion.moved_outside(tracked):
            return self._follow(frame)
        if tracked and not due:
            found = self.detector.detect_near(frame.image, tracked)
            if len(found) >= len(tracked):
                return found
        self._last_scan = frame.timestamp
        return self.detector.detect(frame.image)

    def _follow(self, frame: Frame) -> list[Detection]:
        """Cadence mode, nothing new in the picture: search again only around the faces that moved."""
        still = [d for d in self.tracker.detections() if not self.motion.moved(d.box)]
        moving = [d.box for d in self.tracker.detections() if self.motion.moved(d.box)]
        if not moving:
            return still
        found = self.detector.detect_near(frame.image, moving)
        found = [d for d in found if all(d.box.iou(s.box) < 0.5 for s in still)]  # not a still neighbour again
        if len(found) < len(moving):  # a face was lost: look everywhere
            self._last_scan = frame.timestamp
            return self.detector.detect(frame.image)
        return still + found

    def read(self, frame: Frame) -> Analysis:
        if self.mode is Mode.IMAGE:
            self.forget()  # an unrelated picture: nothing carries over
        if self.motion is not None:
            self.motion.update(frame.image)
        detections = self.detect(frame)
        probs = np.full((len(detections), len(EMOTIONS)), np.nan, np.float32)
        due = self.tracker.due(detections, frame.timestamp, self.cadence.refresh_s) if self.cadence else None
        chosen = [i for i in range(len(detections)) if due is None or due[i]]
        if chosen:
            probs[chosen] = classify(frame.image, [detections[i] for i in chosen], self.classifier, frame.timestamp)
        faces = self.tracker.update(detections, probs, frame.timestamp)
        return Analysis(frame.index, frame.timestamp, mark_unsure(faces, self.classifier))

    def forget(self) -> None:
        """The next frame is an unrelated picture (IMAGE mode): no tracking or reading carries over."""
        self.tracker = FaceTracker()
        if isinstance(self.classifier, FaceClassifier):
            self.classifier.forget()


def make_face_reader(config: ReaderConfig, mode: Mode = Mode.OFFLINE) -> FaceReader:
    """The real detector and classifier the config chooses, for `mode` (loads models: call it off the video
    thread).

    OFFLINE: alternating views (`OFFLINE_VIEWS`).
    LIVE: one thread per model (the video thread needs the other core), alternating views and a cadence.
    IMAGE: unrelated photos, read as `fercam.analyze_image` reads them: where the detector finds no face, the
    fallback detector the combined reading was fitted with looks."""
    from fercam.combined import load_combined_reading
    from fercam.detection import load_detector
    from fercam.detection.fallback import load_picture_detector
    from fercam.refresh import LIVE_REFRESH

    if mode is Mode.IMAGE:
        reading = load_combined_reading()
        detector = load_picture_detector(config.detector, reading.combiner.fallback_detector)
        return FaceReader(detector, reading, mode=mode)
    if mode is Mode.OFFLINE:
        return FaceReader(load_detector(config.detector), load_combined_reading(views=OFFLINE_VIEWS))
    options = {"num_threads": 1} if config.detector == "mtcnn" else {}
    reading = load_combined_reading(num_threads=1, views="alternating", refresh=LIVE_REFRESH)
    return FaceReader(load_detector(config.detector, **options), reading, cadence=Cadence(), mode=mode)


def make_live_reader(config: ReaderConfig) -> FaceReader:
    return make_face_reader(config, Mode.LIVE)


def make_cue_reader() -> CueReader:
    """The body-cue stage (loads the pose model: call it off the video thread)."""
    from fercam.body.reader import BodyCueReader

    return BodyCueReader()


def prepare(frame: Frame, settings: Settings) -> Frame:
    """The frame as it will be analysed and sent: flipped when the user asked for a mirrored output."""
    return Frame(cv2.flip(frame.image, 1), frame.index, frame.timestamp) if settings.mirror else frame


def render(
    frame: Frame,
    analysis: Analysis | None,
    settings: Settings,
    *,
    stale: bool = False,
    voice=None,
    body=None,
    speaking=None,
) -> np.ndarray:
    """The image the sinks receive: the frame with the chosen overlays (`body`: cues per face id; `speaking`: who
    speaks, live, which takes the voice badge to that face: `fercam.voice_marks`)."""
    image = annotate(frame.image, analysis, settings, stale=stale, body=body)
    draw_heard_voice(image, analysis, settings, voice, speaking, stale=stale)
    return image


def run_offline(
    source: Source,
    reader: FaceReader,
    sinks: Sequence[Sink],
    settings: Settings,
    *,
    every: int = 1,
    max_frames: int = 0,
    max_seconds: float = 0,
    on_analysis: Callable[[Analysis, Frame], None] | None = None,
    before_frame: Callable[[], None] | None = None,
) -> int:
    """OFFLINE or IMAGE mode (the reader's): every frame in order; analyses every `every`-th. Returns the frame
    count. `before_frame` is called before each frame is taken: what it raises (a stop asked for) ends the run
    there, every frame before it written.

    The work is shared by threads, so both cores work: `ReadAhead` decodes a few frames ahead, this thread
    analyses each frame, and an `InOrder` stage draws it, sends it to the sinks (files, never a window: those are
    live) and calls `on_analysis`, a few frames behind and in the same order. Whatever was analysed before a stop or
    an error is still written; an error in the sinks or in `on_analysis` stops the run at the next frame and is
    raised here, as is an error in reading."""
    analysis, count = None, 0
    source = ReadAhead(source)

    def finish(frame: Frame, analysis: Analysis, fresh: bool) -> None:
        image = render(frame, analysis, settings)
        for sink in sinks:
            sink.send(image)
        if fresh and on_analysis:  # after the sinks: a run stopped midway has no row for a frame it never wrote
            on_analysis(analysis, frame)

    behind = InOrder(finish)
    try:
        while not max_frames or count < max_frames:
            if before_frame:
                before_frame()
            frame = source.read()
            if frame is None or (max_seconds and frame.timestamp >= max_seconds):
                break
            frame = prepare(frame, settings)
            fresh = count % every == 0
            if fresh:
                analysis = reader.read(frame)
            behind.put(frame, analysis, fresh)
            count += 1
    finally:
        try:
            source.close()
        finally:  # the writing is finished whatever stopped the reading
            behind.close()
    behind.check()
    return count
