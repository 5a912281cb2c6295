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
MAX_ACCURACY_COST = 0.01


def recall(pred: np.ndarray, labels: np.ndarray, cls: int) -> float:
    mask = labels == cls
    return float((pred[mask] == cls).mean()) if mask.any() else 1.0


def fit_logit_bias(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """A per-class bias: the best logit adjustment (-tau * log prior), then the smallest raises
    of the classes whose recall is below MIN_RECALL (fear is common but confused, so the
    prior alone cannot lift it). The floors may cost at most MAX_ACCURACY_COST of validation
    accuracy: a weak model (a short run) keeps its accuracy rather than predicting rare classes."""
    prior = np.bincount(labels, minlength=len(EMOTIONS)) + 1.0
    log_prior = np.log(prior / prior.sum())
    candidates = [-tau * log_prior for tau in TAUS]
    scores = [_score(logits + c, labels) for c in candidates]
    min_accuracy = max(accuracy for _, accuracy in scores) - MAX_ACCURACY_COST
    allowed = [(key, i) for i, key in enumerate(scores) if key[1] >= min_accuracy]
    bias = candidates[max(allowed)[1]].copy()
    for _ in range(3):  # raising one class lowers the others' recall a little: let them settle
        for cls, floor in MIN_RECALL.items():
            bias[cls] += _smallest_raise(logits + bias, labels, cls, floor, min_accuracy)
    return (bias - bias.mean()).astype(np.float32)


def _score(logits: np.ndarray, labels: np.ndarray) -> tuple[bool, float]:
    """(recall floors met, accuracy): floors first, then accuracy."""
    pred = np.argmax(logits, axis=1)
    meets_floors = all(recall(pred, labels, c) >= floor for c, floor in MIN_RECALL.items())
    return meets_floors, float((pred == labels).mean())


def _smallest_raise(logits: np.ndarray, labels: np.ndarray, cls: int, floor: float, min_accuracy: float) -> float:
    """How much to add to one class's logit so that its recall reaches `floor` (0 if it does),
    stopping before accuracy falls below `min_accuracy`."""
    best = 0.0
    for step in RAISES:
        shifted = logits.copy()
        shifted[:, cls] += step
        pred = np.argmax(shifted, axis=1)
        if (pred == labels).mean() < min_accuracy:
            return best
        best = float(step)
        if recall(pred, labels, cls) >= floor:
            return best
    return best
