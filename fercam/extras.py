"""Optional dependencies (the `train` extra): imported only when a feature needs them, with the install command.

The app's own modules import from here, never from `fercam.training`, which is for training alone."""

from __future__ import annotations

import os

INSTALL_HINT = 'pip install "fercam[train]"'


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message carries the install command."""


def require_tensorflow():
    """Import Keras on TensorFlow, or explain exactly how to install it."""
    try:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import tensorflow  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"training tools need TensorFlow: {INSTALL_HINT}") from exc
    return keras
