"""The emotion classifier as the app runs it: LiteRT, no TensorFlow import, under 1 ms a face.

One thread is enough for the int8-weight model and leaves the other core to the detector.
"""

from __future__ import annotations

import threading
from pathlib import Path

import cv2
import numpy as np

from fercam.paths import model_file
from fercam.types import EMOTIONS

NATIVE_SIZE = 48
DEFAULT_MODEL = "fer_cnn.tflite"


class ModelError(ValueError):
    """A model file that is missing or is not an emotion model."""


def to_model_input(faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """uint8 gray faces (N, H, W) of any size -> float32 (N, 48, 48, 1) raw pixel values."""
    if isinstance(faces, np.ndarray) and faces.ndim == 2:
        faces = faces[None]
    if len(faces) == 0:
        return np.zeros((0, NATIVE_SIZE, NATIVE_SIZE, 1), np.float32)
    out = np.empty((len(faces), NATIVE_SIZE, NATIVE_SIZE, 1), np.float32)
    for i, face in enumerate(faces):
        face = np.asarray(face)
        if face.dtype != np.uint8 or face.ndim != 2 or min(face.shape) == 0:
            raise ValueError(f"faces must be uint8 grayscale images of shape (H, W); got {face.dtype} {face.shape}")
        if face.shape != (NATIVE_SIZE, NATIVE_SIZE):
            shrink = face.shape[0] > NATIVE_SIZE
            face = cv2.resize(
                face, (NATIVE_SIZE, NATIVE_SIZE), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
        out[i, ..., 0] = face
    return out


class EmotionClassifier:
    """Seven-way emotion probabilities (FER2013 order) for grayscale face crops."""

    labels = EMOTIONS

    def __init__(self, path: str | Path, *, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path}: not a LiteRT model ({exc})") from exc
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if tuple(self._input["shape"][1:]) != (NATIVE_SIZE, NATIVE_SIZE, 1) or self._output["shape"][-1] != len(
            EMOTIONS
        ):
            raise ModelError(
                f"{self.path}: expects {self._input['shape']} -> {self._output['shape']}, not 48x48x1 -> 7"
            )
        self._batch = int(self._input["shape"][0])
        self._lock = threading.Lock()  # a LiteRT interpreter is not thread-safe

    def predict_faces(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        batch = to_model_input(faces)
        if len(batch) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        with self._lock:
            if len(batch) != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], batch.shape)
                self._interpreter.allocate_tensors()
                self._batch = len(batch)
            self._interpreter.set_tensor(self._input["index"], batch)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()


class KerasEmotionClassifier:
    """The same API over a `.keras` file (needs the `train` extra): for evaluating checkpoints."""

    labels = EMOTIONS

    def __init__(self, path: str | Path) -> None:
        from fercam.training import require_tensorflow

        keras = require_tensorflow()
        self.path = Path(path)
        try:
            self._model = keras.models.load_model(self.path)
        except Exception as exc:  # keras raises many types for a file that is not a model
            raise ModelError(f"{self.path}: not a Keras model ({exc})") from exc

    def predict_faces(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        batch = to_model_input(faces)
        return self._model.predict(batch, batch_size=256, verbose=0) if len(batch) else np.zeros((0, 7), np.float32)


def load_classifier(path: str | Path | None = None) -> EmotionClassifier | KerasEmotionClassifier:
    """Load the shipped emotion model, or the `.tflite` / `.keras` file at `path`."""
    path = Path(path) if path is not None else model_file(DEFAULT_MODEL)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if path.suffix == ".keras":
        return KerasEmotionClassifier(path)
    return EmotionClassifier(path)
