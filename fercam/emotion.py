"""The emotion classifier as the app runs it: LiteRT, no TensorFlow import.

Views: by default each face is classified together with its flipped image and the two
predictions averaged ("both"): faces are left-right symmetric, so this buys about one point of
accuracy for twice the cost. LIVE mode uses "alternating" instead: the face on one call, its
flipped image on the next, at the cost of one; the tracker's smoothing over time then
averages the two views. "single" scores each face once.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from fercam.litert import LiteRTModel, ModelError
from fercam.paths import model_file
from fercam.types import EMOTIONS

__all__ = ["EmotionClassifier", "KerasEmotionClassifier", "ModelError", "load_classifier", "to_model_input"]

NATIVE_SIZE = 48
DEFAULT_MODEL = "fer_cnn.tflite"


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


VIEWS = ("both", "single", "alternating")


def both_views(run, batch: np.ndarray) -> np.ndarray:
    """`run` on the faces and their flipped images in one batch; the mean of each pair."""
    both = run(np.concatenate([batch, batch[:, :, ::-1]]))
    return (both[: len(batch)] + both[len(batch) :]) / 2


class _ViewChooser:
    """Which view(s) of the faces each call runs, per the `views` option."""

    def __init__(self, views: str) -> None:
        if views not in VIEWS:
            raise ValueError(f"views must be one of {', '.join(VIEWS)}, not {views!r}")
        self.views, self._flip = views, False

    def __call__(self, run, batch: np.ndarray) -> np.ndarray:
        if not len(batch) or self.views == "single":
            return run(batch)
        if self.views == "both":
            return both_views(run, batch)
        self._flip = not self._flip
        return run(batch[:, :, ::-1] if self._flip else batch)


class EmotionClassifier:
    """Seven-way emotion probabilities (FER2013 order) for grayscale face crops.

    `views` is "both" (default), "single" or "alternating" (see the module's docstring)."""

    labels = EMOTIONS

    def __init__(self, path: str | Path, *, num_threads: int = 2, views: str = "both") -> None:
        self.path, self._views = Path(path), _ViewChooser(views)
        self._model = LiteRTModel(
            self.path,
            input_shape=(NATIVE_SIZE, NATIVE_SIZE, 1),
            outputs=len(EMOTIONS),
            num_threads=num_threads,
            what="48x48x1",
        )

    def predict_faces(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        return self._views(self._model.run, to_model_input(faces))


class KerasEmotionClassifier:
    """The same API over a `.keras` file (needs the `train` extra): for evaluating checkpoints."""

    labels = EMOTIONS

    def __init__(self, path: str | Path, *, views: str = "both") -> None:
        from fercam.extras import require_tensorflow

        keras = require_tensorflow()
        self.path, self._views = Path(path), _ViewChooser(views)
        try:
            self.model = keras.models.load_model(self.path)
        except Exception as exc:  # keras raises many types for a file that is not a model
            raise ModelError(f"{self.path}: not a Keras model ({exc})") from exc

    def predict_faces(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        batch = to_model_input(faces)
        if not len(batch):
            return np.zeros((0, len(EMOTIONS)), np.float32)
        return self._views(lambda x: self.model.predict(x, batch_size=256, verbose=0), batch)


def load_classifier(
    path: str | Path | None = None, *, views: str = "both", num_threads: int = 2
) -> EmotionClassifier | KerasEmotionClassifier:
    """Load the shipped emotion model, or the `.tflite` / `.keras` file at `path`."""
    path = Path(path) if path is not None else model_file(DEFAULT_MODEL)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    if path.suffix == ".keras":
        return KerasEmotionClassifier(path, views=views)
    return EmotionClassifier(path, views=views, num_threads=num_threads)
