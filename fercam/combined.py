"""The combined reading of a colour face: our FER2013 model and a second opinion, weighed by a learnt rule.

Our model (`fercam.emotion`) reads a 48 px grey crop; it was trained on FER2013 and is right about half
the time on colour photographs of real people. The second opinion is the OpenCV-zoo MobileFaceNet trained
on RAF-DB (in-the-wild photographs), which reads a 112 px colour face aligned by the detector's five
landmarks. A small multinomial logistic regression on both models' log-probabilities and, if the rule
file says so, the zoo model's 512 penultimate features, fitted on `wild_faces_dev` and `sfew_train` and
chosen by nested held-out-persons-and-films folds (`python -m fercam.training.fit_combiner`), turns the
two readings into one; it ships as a JSON file and runs here with numpy alone. The same file holds the
confidence under which a reading is called "unsure".
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fercam.contracts import EmotionClassifier
from fercam.crops import face_crops
from fercam.litert import ModelError
from fercam.paths import model_file
from fercam.types import EMOTIONS, Box, Detection

SECOND_MODEL = "fer_mobilefacenet_2022july_int8.onnx"
COMBINER = "fer_combiner.json"
ALIGNED_SIZE = 112
FEATURE_LAYER = "onnx_node!Flatten_nc_rename_95"  # the zoo model's 512 penultimate features, its last layer's input
FEATURES = 512
# The ArcFace 112x112 template the zoo model was trained on, in the detectors' landmark order
# (image-left eye, image-right eye, nose, image-left and image-right mouth corner).
TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]], np.float32
)
# RAF-DB's class order is angry, disgust, fear, happy, neutral, sad, surprise: these columns give FER2013's.
RAF_TO_FER = [0, 1, 2, 3, 5, 6, 4]
EPS = 1e-4  # floor under probabilities before a log: one model's certainty must not overrule everything


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
    """The OpenCV-zoo RAF-DB expression model, run by OpenCV's DNN module; probabilities in FER2013 order."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else model_file(SECOND_MODEL)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        try:
            self._net = cv2.dnn.readNetFromONNX(str(self.path))
        except cv2.error as exc:
            raise ModelError(f"{self.path}: not an ONNX model OpenCV can run ({str(exc).strip()[-80:]})") from None
        self._lock = threading.Lock()  # one network object is not safe to share between threads
        self._output = self._net.getLayerNames()[-1]

    def predict_aligned(self, faces: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 7) probabilities for 112x112 BGR aligned faces (the int8 graph takes one face a call)."""
        return self.read_aligned(faces)[0]

    def read_aligned(self, faces: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(N, 7) probabilities and (N, 512) penultimate features (the inputs of its last layer, one pass)."""
        out = np.zeros((len(faces), len(EMOTIONS)), np.float32)
        features = np.zeros((len(faces), FEATURES), np.float32)
        for i, face in enumerate(faces):
            blob = cv2.dnn.blobFromImage(face, 1 / 127.5, (ALIGNED_SIZE, ALIGNED_SIZE), (127.5,) * 3, swapRB=True)
            with self._lock:
                self._net.setInput(blob)
                features_i, logits = self._net.forward([FEATURE_LAYER, self._output])
            features[i] = features_i[0]
            logits = logits[0].astype(np.float64)
            p = np.exp(logits - logits.max())
            out[i] = (p / p.sum())[RAF_TO_FER]
        return out, features


# What a rule may read, and how many numbers each gives: our model's and the zoo model's probabilities
# (entering as logs), and the zoo model's penultimate features.
INPUT_SIZES = {"ours": len(EMOTIONS), "zoo": len(EMOTIONS), "zoo_features": FEATURES}


@dataclass(frozen=True)
class Combiner:
    """softmax(W @ inputs + b), inputs = [log p_ours, log p_second] and, if the rule reads them, the second
    model's penultimate features; the confidence under which a reading is "unsure", and the detector to try
    in a picture where the default finds no face (None: none), as fitted together."""

    weights: np.ndarray  # (7, 14) or (7, 14 + 512)
    bias: np.ndarray  # (7,)
    unsure_below: float
    fallback_detector: str | None = None
    inputs: tuple[str, ...] = ("ours", "zoo")

    @property
    def reads_features(self) -> bool:
        """Whether the rule needs the second model's features beside its probabilities."""
        return "zoo_features" in self.inputs

    @classmethod
    def load(cls, path: str | Path | None = None) -> Combiner:
        path = Path(path) if path is not None else model_file(COMBINER)
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            weights, bias = np.array(data["weights"], np.float64), np.array(data["bias"], np.float64)
            unsure_below, fallback = float(data["unsure_below"]), data.get("fallback_detector")
            inputs = tuple(data.get("inputs", ("ours", "zoo")))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(f"{path}: not a combiner file ({exc})") from None
        if inputs not in (("ours", "zoo"), ("ours", "zoo", "zoo_features")):
            raise ModelError(f"{path}: inputs must be ours, zoo[, zoo_features], got {', '.join(map(str, inputs))}")
        width = sum(INPUT_SIZES[name] for name in inputs)
        if weights.shape != (len(EMOTIONS), width) or bias.shape != (len(EMOTIONS),):
            raise ModelError(f"{path}: weights must be 7x{width} and bias 7, got {weights.shape} and {bias.shape}")
        return cls(weights, bias, unsure_below, fallback, inputs)

    def combine(self, ours: np.ndarray, second: np.ndarray) -> np.ndarray:
        """(N, 7) combined probabilities from our model's (N, 7) probabilities and the second model's
        (N, 7) probabilities, followed by its (N, 512) features where the rule reads them."""
        return softmax(self.logits(ours, second))

    def logits(self, ours: np.ndarray, second: np.ndarray) -> np.ndarray:
        k = len(EMOTIONS)
        x = features(ours, second[:, :k])
        if self.reads_features:
            x = np.hstack([x, second[:, k:].astype(np.float64)])
        return x @ self.weights.T + self.bias


def features(ours: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The combiner's inputs: both models' log-probabilities side by side, (N, 14)."""
    return np.log(np.maximum(np.concatenate([ours, second], axis=1).astype(np.float64), EPS))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (z / z.sum(axis=1, keepdims=True)).astype(np.float32)


class CombinedReading:
    """Our grey-crop model and the aligned colour model on the same detections, combined (a `FaceClassifier`).

    A face without landmarks keeps our model's reading alone. Grey pictures stored as BGR are read the same
    way (most of the development set's photographs are grey, and the rule was fitted on them).
    `second_every_s` (LIVE mode) reuses a face's second opinion for that long: the zoo model costs several
    times ours, and a face's second opinion changes slowly next to our model's ten readings a second; a
    face is known again by its box overlapping."""

    def __init__(
        self,
        classifier: EmotionClassifier,
        second: AlignedEmotionModel,
        combiner: Combiner,
        *,
        second_every_s: float = 0.0,
        clock=time.monotonic,
    ) -> None:
        self.classifier, self.second, self.combiner = classifier, second, combiner
        self.unsure_below = combiner.unsure_below
        self.second_every_s, self._clock = second_every_s, clock
        self._recent: list[tuple[Box, np.ndarray, float]] = []  # (box, second opinion, when), LIVE mode

    def classify(self, bgr_image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        ours = self.classifier.predict_faces(face_crops(bgr_image, [d.box for d in detections]))
        second = self._second_opinions(bgr_image, detections)
        have = ~np.isnan(second).any(axis=1)
        if have.any():
            ours = ours.copy()
            ours[have] = self.combiner.combine(ours[have], second[have])
        return ours

    def _second_opinions(self, bgr_image: np.ndarray, detections: Sequence[Detection]) -> np.ndarray:
        """(N, 7) zoo-model probabilities, followed by its (N, 512) features where the rule reads them;
        NaN rows where a face cannot be aligned."""
        width = len(EMOTIONS) + (FEATURES if self.combiner.reads_features else 0)
        out = np.full((len(detections), width), np.nan, np.float32)
        now = self._clock()
        recent = [r for r in self._recent if now - r[2] < self.second_every_s]
        todo = []
        for i, detection in enumerate(detections):
            known = next((r for r in recent if r[0].iou(detection.box) > 0.5), None)
            if known is not None:
                out[i] = known[1]
            else:
                todo.append(i)
        aligned = aligned_faces(bgr_image, [detections[i] for i in todo])
        have = [i for i, face in zip(todo, aligned) if face is not None]
        if have:
            faces = [face for face in aligned if face is not None]
            out[have] = (
                np.hstack(self.second.read_aligned(faces))
                if self.combiner.reads_features
                else self.second.predict_aligned(faces)
            )
        if self.second_every_s > 0:
            kept = [r for r in recent if all(r[0].iou(detections[i].box) <= 0.5 for i in have)]
            self._recent = kept + [(detections[i].box, out[i], now) for i in have]
        return out


def load_combined_reading(
    classifier: EmotionClassifier | None = None, *, second_every_s: float = 0.0, **options
) -> CombinedReading:
    """The shipped combined reading: our model (or `classifier`; else `load_classifier(**options)`),
    the zoo model and `fer_combiner.json`."""
    from fercam.emotion import load_classifier

    classifier = classifier or load_classifier(**options)
    return CombinedReading(classifier, AlignedEmotionModel(), Combiner.load(), second_every_s=second_every_s)
