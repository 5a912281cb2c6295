"""Multinomial logistic regression in numpy (Newton's method): the combination rule's fitter.

Small on purpose: up to a few hundred inputs, 7 classes, two thousand faces; no scikit-learn or scipy in the app's
dependencies. The L2 penalty applies to the weights, not the biases.
"""

from __future__ import annotations

import numpy as np


def fit_softmax(
    x: np.ndarray, y: np.ndarray, *, k: int, l2: float, sample_weight: np.ndarray | None = None, steps: int = 50
) -> tuple[np.ndarray, np.ndarray]:
    """(weights (k, d), bias (k,)) minimising mean weighted cross-entropy + l2/2 * |weights|^2."""
    n, d = x.shape
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.full(n, 1.0) if sample_weight is None else np.asarray(sample_weight, float)
    w = w / w.sum()
    target = np.eye(k)[y]
    theta = np.zeros((k, d + 1))
    penalty = np.full(d + 1, l2)
    penalty[-1] = 1e-8  # the biases are free; the tiny term keeps the Hessian invertible (softmax is shift-invariant)
    eye = np.eye(k * (d + 1))
    for _ in range(steps):
        p = _softmax(xb @ theta.T)
        grad = ((p - target) * w[:, None]).T @ xb + theta * penalty
        # Hessian of the weighted cross-entropy: sum_i w_i (diag(p_i) - p_i p_i^T) kron x_i x_i^T,
        # one (d+1)x(d+1) block per pair of classes (a matrix product each: fast for a few hundred inputs)
        s = w[:, None, None] * (p[:, :, None] * np.eye(k) - p[:, :, None] * p[:, None, :])
        hess = np.zeros((k, d + 1, k, d + 1))
        for a in range(k):
            for b in range(a, k):
                hess[a, :, b, :] = hess[b, :, a, :] = xb.T @ (xb * s[:, a, b, None])
        hess = hess.reshape(k * (d + 1), k * (d + 1)) + eye * np.tile(penalty, k)
        step = np.linalg.solve(hess, grad.reshape(-1)).reshape(k, d + 1)
        theta -= step
        if np.abs(step).max() < 1e-7:
            break
    return theta[:, :d], theta[:, d]


def _softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def balance_weights(y: np.ndarray, k: int, power: float, mass: np.ndarray | None = None) -> np.ndarray:
    """Per-sample weights (n_max / n_class) ** power: 0 leaves the classes as they come, 1 balances them. With
    `mass` (each sample's weight), a class's n is the sum of its samples' weights rather than their number."""
    counts = np.bincount(y, weights=mass, minlength=k).astype(float)
    per_class = np.where(counts > 0, (counts.max() / np.maximum(counts, 1)) ** power, 0.0)
    return per_class[y]
