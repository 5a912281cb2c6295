"""YuNet (OpenCV's `cv2.FaceDetectorYN`): a small, fast CNN detector that finds turned and partly covered faces.

The frame is shrunk so its longer side is at most `scan_size` before the network sees it; the
model file ships in `models/` (Apache-2.0, from the OpenCV model zoo; see models/README.md).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import cv2
import numpy as np

from fercam.detection.common import check_image, clip_box
from fercam.paths import model_file
from fercam.types import Box, Detection

MODEL = "face_detection_yunet_2023mar.onnx"


class YuNetDetector:
    def __init__(self, *, score_threshold: float = 0.7, nms_threshold: float = 0.3, scan_size: int = 640) -> None:
        path = model_file(MODEL)
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: reinstall FER Cam")
        try:
            self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), score_threshold, nms_threshold, 50)
        except cv2.error as exc:
            raise ValueError(f"{path}: not a YuNet model ({str(exc).strip().splitlines()[-1]})") from None
        self.scan_size = scan_size
        self._lock = threading.Lock()  # one network object is not safe to share between threads

    def detect(self, bgr_image: np.ndarray) -> list[Detection]:
        check_image(bgr_image)
        factor = min(1.0, self.scan_size / max(bgr_image.shape[:2]))
        image = (
            bgr_image
            if factor == 1.0
            else cv2.resize(bgr_image, None, fx=factor, fy=factor, interpolation=cv2.INTER_AREA)
        )
        with self._lock:
            self._net.setInputSize((image.shape[1], image.shape[0]))
            _, rows = self._net.detect(image)
        found = [_detection(row / factor, row[-1], bgr_image.shape) for row in ([] if rows is None else rows)]
        return sorted(found, key=lambda d: -d.score)

    def detect_near(self, bgr_image: np.ndarray, boxes: Sequence[Box]) -> list[Detection]:
        """YuNet's full scan is already cheap: no local search."""
        return self.detect(bgr_image)


def _detection(row: np.ndarray, score: float, shape: tuple[int, ...]) -> Detection:
    x, y, w, h = row[:4].tolist()
    points = row[4:14].reshape(5, 2)
    # YuNet gives right eye, left eye, nose, right and left mouth corner of the person, which are the
    # image's left eye, right eye, ... in the order the other detectors use (fercam.detection.common).
    landmarks = tuple((float(px), float(py)) for px, py in points)
    return Detection(clip_box(x, y, x + w, y + h, shape), float(score), landmarks)
