"""The second opinion: the OpenCV-zoo RAF-DB expression network on faces aligned by the detector's landmarks.

The combined reading (`fercam.combined`) weighs our FER2013 model against this network. It lives apart
from the rule that weighs them because it is a model of its own, which the training loop
(`fercam.training.wild`), the doctor and the comparison tool load and run without the rule: the LiteRT file
and its two declared outputs, the ArcFace template the faces are warped onto, and RAF-DB's class order
turned into FER2013's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from fercam.litert import LiteRTModel, ModelError
from fercam.paths import model_file
from fercam.types import Detection

# The zoo network as float32 LiteRT (`tools/zoo_fer_to_litert.py` from the zoo's int8 ONNX file): three times
# cheaper than OpenCV running the int8 graph on CPUs without VNNI, same readings within rounding (models/README.md).
SECOND_MODEL = "fer_mobilefacenet_2022july.tflite"
ALIGNED_SIZE = 112
FEATURES = 512
# The LiteRT file's declared outputs (its signature's names): the logits, and the 512 penultimate features its
# last layer reads, which the rule may read beside the probabilities.
OUTPUTS = {"logits": 7, "features": FEATURES}
# The ArcFace 112x112 template the zoo model was trained on, in the detectors' landmark order
# (image-left eye, image-right eye, nose, image-left and image-right mouth corner).
TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)
# RAF-DB's class order is angry, disgust, fear, happy, neutral, sad, surprise: these columns give FER2013's.
RAF_TO_FER = [0, 1, 2, 3, 5, 6, 4]


def aligned_faces(bgr_image: np.ndarray, detections: Sequence[Detection]) -> list[np.ndarray | None]:
    """112x112 BGR faces warped onto the template by a similarity transform; None where landmarks are missing."""
    faces = []
    for detection in detections:
        points = np.asarray(detection.landmarks, np.float32)
        matrix = None
        if points.shape == (5, 2):
            matrix, _ = cv2.estimateAffinePartial2D(points, TEMPLATE, method=cv2.LMEDS)
        faces.append(
            None
            if matrix is None
            else cv2.warpAffine(bgr_image, matrix, (ALIGNED_SIZE, ALIGNED_SIZE), borderMode=cv2.BORDER_REPLICATE)
        )
    return faces


class AlignedEmotionModel:
    """The second opinion: the OpenCV-zoo RAF-DB expression network on LiteRT, one thread (a second one
    buys nothing at these sizes). `predict_aligned(faces) -> (N, 7)`: probabilities in FER2013 order for
    112x112 BGR aligned faces; `read_aligned` adds its (N, 512) features.

    The network reads one face an invoke (`max_batch` 1), whatever the number asked for: its memory then stays
    that of one face (five in one invoke grew the process by 20 MB for good, and a crowd photo's thirty would grow
    it by six times that), no invoke re-plans the network for another batch size, and a batch saves nothing a face
    on one thread (5.9 CPU ms a face alone, 7.0 four at a time on an AVX-512 Xeon; 9.6 and 10.2 on an AVX2 EPYC)."""

    def __init__(self, path: str | Path | None = None, *, num_threads: int = 1) -> None:
        self.path = Path(path) if path is not None else model_file(SECOND_MODEL)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        shape = (ALIGNED_SIZE, ALIGNED_SIZE, 3)
        self._model = LiteRTModel(
            self.path, input_shape=shape, outputs=OUTPUTS, num_threads=num_threads, what="112x112x3 faces", max_batch=1
        )

    def predict_aligned(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        return self.read_aligned(faces)[0]

    def read_aligned(self, faces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(N, 7) probabilities and (N, 512) penultimate features (the inputs of its last layer), one pass."""
        batch = np.stack(faces) if len(faces) else np.zeros((0, ALIGNED_SIZE, ALIGNED_SIZE, 3))
        logits, features = self._model.run(batch)  # BGR 0-255 (run makes it float32): the model normalises
        return softmax(logits.astype(np.float64))[:, RAF_TO_FER], features


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise probabilities, float32, from (N, K) logits (the network's, and the combiner's)."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)
