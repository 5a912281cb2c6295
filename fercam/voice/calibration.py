"""What the voice model may claim: temperature-scaled probabilities, and the words for windows it will not name."""

from __future__ import annotations

import numpy as np

NO_SPEECH, UNSURE = "no speech", "unsure"


def temperature_scale(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Softmax probabilities softened (T > 1) or sharpened (T < 1): softmax(log p / T)."""
    z = np.log(np.clip(probs, 1e-12, 1.0)) / temperature
    z = np.exp(z - z.max(axis=-1, keepdims=True))
    return (z / z.sum(axis=-1, keepdims=True)).astype(np.float32)
