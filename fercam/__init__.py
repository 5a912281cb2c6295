"""FER Cam: live facial-expression overlay as a virtual camera, and offline analysis.

The public functions import their heavy parts lazily, so `import fercam` stays cheap.
"""

from __future__ import annotations

import time as _time

__version__ = "0.1.0"
IMPORTED_AT = _time.monotonic()  # the benchmark's clock origin where /proc is missing
__all__ = ["load_classifier", "load_detector", "load_voice_classifier"]


def load_classifier(path=None, **options):
    """The shipped face-emotion model (or the model file at `path`); see `fercam.emotion`."""
    from fercam.emotion import load_classifier as load

    return load(path, **options)


def load_detector(name: str = "mtcnn", **options):
    """A face detector by name ("mtcnn", "haar", ...); see `fercam.detection`."""
    from fercam.detection import load_detector as load

    return load(name, **options)


def load_voice_classifier(path=None):
    """The shipped voice-emotion model; see `fercam.voice.classifier`."""
    from fercam.voice.classifier import load_voice_classifier as load

    return load(path)
