"""Training and evaluation tools; they need TensorFlow (`pip install "fercam[train]"`)."""

from __future__ import annotations

INSTALL_HINT = 'pip install "fercam[train]"'


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message carries the install command."""


def require_tensorflow():
    """Import Keras on TensorFlow, or explain exactly how to install it."""
    try:
        import os

        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        os.environ.setdefault("KERAS_BACKEND", "tensorflow")
        import keras
        import tensorflow  # noqa: F401
    except ImportError as exc:
        raise MissingExtraError(f"training tools need TensorFlow: {INSTALL_HINT}") from exc
    return keras
