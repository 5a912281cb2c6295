"""Post-hoc logit adjustment: trade a little accuracy for recall on the rare classes.

Training on FER2013 leaves the model biased towards frequent classes (disgust is 1.5% of
the data). Subtracting tau * log(prior) from the logits (Menon et al. 2021, "logit
adjustment") removes that bias; tau is chosen on the validation split.
"""

from __future__ import annotations

import numpy as np

from fercam.types import EMOTIONS, Emotion

# Recall floors checked on validation, a little above the product's goals for margin.
MIN_RECALL = {Emotion.DISGUST: 0.55, Emotion.FEAR: 0.50}
TAUS = np.round(np.arange(-0.5, 1.51, 0.05), 2)
RAISES = np.round(np.arange(0.0, 3.01, 0.05), 2)


def recall(pred: np.ndarray, labels: np.ndarray, cls: int) -> float:
    mask = labels == cls
    return float((pred[mask] == cls).mean()) if mask.any() else 1.0


def fit_logit_bias(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A per-class bias: the best logit adjustment (-tau * log prior), then the smallest raises
    of the classes whose recall is below MIN_RECALL (fear is common but confused, so the
    prior alone cannot lift it)."""
    prior = np.bincount(labels, minlength=len(EMOTIONS)) + 1.0
    log_prior = np.log(prior / prior.sum())
    best_key, bias = None, np.zeros(len(EMOTIONS))
    for tau in TAUS:
        candidate = -tau * log_prior
        pred = np.argmax(logits + candidate, axis=1)
        key = (_meets_floors(pred, labels), float((pred == labels).mean()))
        if best_key is None or key > best_key:
            best_key, bias = key, candidate
    for _ in range(3):  # raising one class lowers the others' recall a little: let them settle
        for cls, floor in MIN_RECALL.items():
            bias[cls] += _smallest_raise(logits + bias, labels, cls, floor)
    return (bias - bias.mean()).astype(np.float32)


def _meets_floors(pred: np.ndarray, labels: np.ndarray) -> bool:
    return all(recall(pred, labels, c) >= floor for c, floor in MIN_RECALL.items())


def _smallest_raise(logits: np.ndarray, labels: np.ndarray, cls: int, floor: float) -> float:
    """How much to add to one class's logit so that its recall reaches `floor` (0 if it does)."""
    for step in RAISES:
        shifted = logits.copy()
        shifted[:, cls] += step
        if recall(np.argmax(shifted, axis=1), labels, cls) >= floor:
            return float(step)
    return float(RAISES[-1])
