"""The `mtcnn` package itself (TensorFlow), the yardstick for the LiteRT MTCNN."""

from __future__ import annotations

import cv2
import numpy as np

from fercam.detection.common import LANDMARKS, check_image, clip_box
from fercam.types import Detection


class ReferenceMTCNN:
    """The `mtcnn` package itself (TensorFlow): the yardstick the LiteRT detector is tested against.

    Options are passed to `MTCNN.detect_faces` (min_face_size, threshold_pnet, ...).
    """

    def __init__(self, **options: float) -> None:
        from fercam.extras import INSTALL_HINT, MissingExtraError, require_tensorflow

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

    def detect_near(self, bgr_image: np.ndarray, boxes) -> list[Detection]:
        """No cheaper local search exists for this detector: a full scan."""
        return self.detect(bgr_image)


def _from_reference(face: dict, shape: tuple[int, ...]) -> Detection:
    x, y, w, h = (float(v) for v in face["box"])
    points = face.get("keypoints", {})
    landmarks = tuple((float(points[k][0]), float(points[k][1])) for k in LANDMARKS if k in points)
    return Detection(clip_box(x, y, x + w, y + h, shape), float(face["confidence"]), landmarks)
