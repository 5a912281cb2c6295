"""Where FER Cam finds its shipped models and keeps per-user files."""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent
# An installed wheel carries the models as package data; a source checkout keeps them at the top.
_MODEL_DIRS = (_PACKAGE_DIR / "models", _PACKAGE_DIR.parent / "models")
# `fercam bench`'s camera where no webcam opens: one face, public domain (samples/README.md).
SAMPLE_CLIP = _PACKAGE_DIR / "samples" / "portrait.mp4"


def model_file(name: str) -> Path:
    """The shipped model file `name` (the first location that has it)."""
    for folder in _MODEL_DIRS:
        if (folder / name).is_file():
            return folder / name
    home = next((folder for folder in _MODEL_DIRS if folder.is_dir()), _MODEL_DIRS[-1])
    return home / name  # where it should be, for the error message
