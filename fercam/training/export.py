"""Export a Keras serving model to LiteRT, and prove the two agree.

Keras 3 -> SavedModel -> TFLiteConverter is the path that converts correctly; converting
from concrete functions produced a silently wrong model, hence the agreement check.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np


class ExportError(RuntimeError):
    """The LiteRT model does not reproduce the Keras model."""


def export_tflite(model, path: Path, *, check_faces: np.ndarray, tolerance: float = 1e-3) -> Path:
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        Path(path).write_bytes(converter.convert())
    from fercam.emotion import load_classifier

    expected = model.predict(check_faces[..., None].astype(np.float32), verbose=0)
    got = load_classifier(path).predict_faces(check_faces)
    error = float(np.abs(expected - got).max())
    if error > tolerance:
        raise ExportError(f"LiteRT and Keras disagree by {error:.4f} (> {tolerance}) on {path}")
    return Path(path)
