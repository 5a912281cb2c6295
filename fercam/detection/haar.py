"""OpenCV's Haar cascade: no model files, no landmarks, less accurate than MTCNN."""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from fercam.detection.common import check_image, clip_box
from fercam.types import Detection


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

    def detect_near(self, bgr_image: np.ndarray, boxes) -> list[Detection]:
        """No cheaper local search exists for this detector: a full scan."""
        return self.detect(bgr_image)


def _squash(weight: float) -> float:
    return 1.0 / (1.0 + math.exp(-weight))
