"""Keras voice MLP -> LiteRT `.tflite`, with its feature statistics and calibration in the `.json` beside it."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from fercam.voice.features import FeatureNorm, norm_file

log = logging.getLogger(__name__)


def export_litert(
    model, norm: FeatureNorm, path: Path, check: np.ndarray, calibration: dict, tolerance: float = 1e-4
) -> Path:
    """Keras -> SavedModel -> LiteRT (+ statistics and calibration); prove both models agree on `check`."""
    from fercam.training.export import ExportError, to_litert
    from fercam.voice.calibration import temperature_scale
    from fercam.voice.classifier import VoiceClassifier

    path = Path(path)
    path.write_bytes(to_litert(model))
    extra = {k: calibration[k] for k in ("temperature", "unsure_below")}
    norm_file(path).write_text(json.dumps({**norm.to_json(), **extra}))
    classifier = VoiceClassifier(path)
    expected = temperature_scale(model.predict(norm.apply(check), verbose=0), extra["temperature"])
    error = float(np.abs(expected - classifier.predict_features(check)).max())
    if error > tolerance:
        raise ExportError(f"LiteRT and Keras disagree by {error:.6f} (> {tolerance}) on {path}")
    log.info("exported %s (%.0f kB), max |LiteRT - Keras| = %.2e", path, path.stat().st_size / 1024, error)
    return path
