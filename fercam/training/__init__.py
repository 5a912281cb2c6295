"""Training and evaluation tools; they need TensorFlow (`pip install "fercam[train]"`)."""

from __future__ import annotations

from fercam.extras import INSTALL_HINT, MissingExtraError, require_tensorflow

__all__ = ["INSTALL_HINT", "MissingExtraError", "require_tensorflow"]
