"""Face detectors by name, so the app and the tools can swap them with one option.

A detector is any object with `detect(bgr_image) -> list[Detection]`. "mtcnn" (the default) is
MTCNN on LiteRT, "mtcnn-reference" is the `mtcnn` package itself (needs TensorFlow, for
comparison), "haar" is OpenCV's Haar cascade (no model files, less accurate, no landmarks).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Protocol

import cv2
import numpy as np

from fercam.types import Box, Detection

DEFAULT_DETECTOR = "mtcnn"
# Landmark order of every detector that has them: left eye, right eye, nose, mouth left, mouth right.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class Detector(Protocol):
    """What the pipeline needs of a detector; `detect_near(image, boxes)` is an optional extra."""

    def detect(self, bgr_image: np.ndarray) -> list[Detection]: ...


def check_image(image: object) -> None:
    """Refuse anything but a uint8 BGR (H, W, 3) image, with a message that says what came instead."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a uint8 BGR image (numpy array of shape (H, W, 3)), got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) == 0:
        raise ValueError(f"expected a uint8 BGR image of shape (H, W, 3), got {image.dtype} {image.shape}")


def clip_box(x1: float, y1: float, x2: float, y2: float, shape: tuple[int, ...]) -> Box:
    """A box clipped to an image of `shape` (H, W, ...)."""
    height, width = shape[:2]
    return Box(min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))


class HaarDetector:
    """OpenCV's frontal-face Haar cascade: ships with OpenCV, no landmarks, less accurate than MTCNN.

    The frame is shrunk so its shorter side is at most `scan_size` and faces under `min_face_ratio`
    of that side are skipped; these coarse defaults keep the cascade cheap. The score is a logistic
    squash of the cascade's last-stage weight: it orders detections, it is not a probability.
    """

    def __init__(
        self,
        *,
        scale_factor: float = 1.2,
        min_neighbors: int = 5,
        min_face_ratio: float = 0.07,
        scan_size: int = 240,
        cascade: str = "haarcascade_frontalface_default.xml",
    ) -> None:
        self._cascade = cv2.CascadeClassifier(cv2.data.haarcascades + cascade)
        if self._cascade.empty():
            raise FileNotFoundError(f"OpenCV has no Haar cascade {cascade!r} in {cv2.data.haarcascades}")
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors
        self.min_face_ratio, self.scan_size = min_face_ratio, scan_size
        self._lock = threading.Lock()  # one cascade object is not safe to share between threads

    def detect(self, bgr_image: np.ndarray) -> list[Detection]:
        check_image(bgr_image)
        gray = cv2.cvtColor(bgr_image, cv2.COLOR_BGR2GRAY)
        factor = min(1.0, self.scan_size / min(gray.shape))
        if factor < 1.0:
            gray = cv2.resize(gray, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        min_side = max(12, round(self.min_face_ratio * min(gray.shape)))
        with self._lock:
            rects, _, weights = self._cascade.detectMultiScale3(
                cv2.equalizeHist(gray),
                scaleFactor=self.scale_factor,
                minNeighbors=self.min_neighbors,
                minSize=(min_side, min_side),
                outputRejectLevels=True,
            )
        found = [
            Detection(clip_box(x / factor, y / factor, (x + w) / factor, (y + h) / factor, bgr_image.shape), _squash(s))
            for (x, y, w, h), s in zip(np.reshape(rects, (-1, 4)).tolist(), np.ravel(weights).tolist(), strict=True)
        ]
        return sorted(found, key=lambda d: -d.score)


def _squash(weight: float) -> float:
    return 1.0 / (1.0 + math.exp(-weight))


class ReferenceMTCNN:
    """The `mtcnn` package itself (TensorFlow): the yardstick the LiteRT detector is tested against.

    Options are passed to `MTCNN.detect_faces` (min_face_size, threshold_pnet, ...).
    """

    def __init__(self, **options: float) -> None:
        from fercam.training import INSTALL_HINT, MissingExtraError, require_tensorflow

        try:
            require_tensorflow()
            from mtcnn import MTCNN
        except ImportError as exc:  # MissingExtraError included: say what this detector needs
            raise MissingExtraError(f"the reference MTCNN needs TensorFlow and mtcnn: {INSTALL_HINT}") from exc
        self._mtcnn = MTCNN()
        self._options = dict(options)

    def detect(self, bgr_image: np.ndarray) -> list[Detection]:
        check_image(bgr_image)
        faces = self._mtcnn.detect_faces(cv2.cvtColor(bgr_image, cv2.COLOR_BGR2RGB), **self._options)
        return [_from_reference(face, bgr_image.shape) for face in faces]


def _from_reference(face: dict, shape: tuple[int, ...]) -> Detection:
    x, y, w, h = (float(v) for v in face["box"])
    points = face.get("keypoints", {})
    landmarks = tuple((float(points[k][0]), float(points[k][1])) for k in LANDMARKS if k in points)
    return Detection(clip_box(x, y, x + w, y + h, shape), float(face["confidence"]), landmarks)


def _mtcnn_lite(**options) -> Detector:
    from fercam.mtcnn_lite import MTCNNLite

    return MTCNNLite(**options)


DETECTORS: dict[str, Callable[..., Detector]] = {
    "mtcnn": _mtcnn_lite,
    "mtcnn-reference": ReferenceMTCNN,
    "haar": HaarDetector,
}


def load_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """The detector registered as `name`, built with `options` (see each detector's class for them)."""
    factory = DETECTORS.get(name)
    if factory is None:
        raise ValueError(f"unknown face detector {name!r}; choose one of: {', '.join(DETECTORS)}")
    return factory(**options)
