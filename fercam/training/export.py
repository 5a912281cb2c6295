"""Export a Keras serving model to LiteRT, and prove the two agree.

Keras 3 -> SavedModel -> TFLiteConverter is the path that converts correctly; converting
from concrete functions produced a silently wrong model, hence the agreement check.
The shipped model uses dynamic-range quantisation (int8 weights): 4x smaller and about
4x faster on a laptop CPU, for a change in the probabilities checked below.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

# A quantised model may move probabilities a little, but must keep every clear decision
# (top-1 ahead by DECISIVE_MARGIN); near-ties may flip either way.
DECISIVE_MARGIN = 0.05
MIN_ARGMAX_AGREEMENT = 0.98
MAX_MEAN_ABS_DIFF = 0.02
FLOAT_TOLERANCE = 1e-3


class ExportError(RuntimeError):
    """The LiteRT model does not reproduce the Keras model."""


def to_litert(model, *, quantize: bool = False, input_signature: tuple[int | None, ...] | None = None) -> bytes:
    """A Keras model as a LiteRT flatbuffer, through a SavedModel (the one path that converts correctly).

    `quantize`: int8 weights (dynamic range); `input_signature`: a shape with None for dynamic sizes."""
    import tensorflow as tf

    with tempfile.TemporaryDirectory() as tmp:
        spec = [tf.TensorSpec(input_signature, tf.float32, name="image")] if input_signature else None
        model.export(tmp, format="tf_saved_model", input_signature=spec, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(tmp)
        if quantize:
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        return converter.convert()


def export_tflite(model, path: Path, *, check_faces: np.ndarray, quantize: bool = True) -> dict:
    """Write `path` and return how closely it agrees with `model` on `check_faces`."""
    Path(path).write_bytes(to_litert(model, quantize=quantize))
    from fercam.emotion import load_classifier

    expected = model.predict(check_faces[..., None].astype(np.float32), verbose=0)
    got = load_classifier(path, views="single").predict_faces(check_faces)  # as `model` computes
    top2 = np.sort(expected, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > DECISIVE_MARGIN
    same = expected.argmax(1) == got.argmax(1)
    agreement = {
        "argmax_agreement": round(float(same.mean()), 4),
        "decisive_agreement": round(float(same[decisive].mean()) if decisive.any() else 1.0, 4),
        "mean_abs_diff": round(float(np.abs(expected - got).mean()), 5),
        "max_abs_diff": round(float(np.abs(expected - got).max()), 5),
    }
    if quantize:
        ok = agreement["decisive_agreement"] >= MIN_ARGMAX_AGREEMENT and agreement["mean_abs_diff"] <= MAX_MEAN_ABS_DIFF
    else:
        ok = agreement["max_abs_diff"] <= FLOAT_TOLERANCE
    if not ok:
        raise ExportError(f"LiteRT and Keras disagree on {path}: {agreement}")
    return agreement
