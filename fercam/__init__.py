"""FER Cam: live facial-expression overlay as a virtual camera, and offline analysis.

The library in five functions (the heavy parts load on first use, so `import fercam` stays cheap):

    import cv2, fercam
    for face in fercam.analyze_image(cv2.imread("photo.jpg")):
        print(face.box, face.score, face.top.label, face.probs)
"""

from __future__ import annotations

import time as _time
from functools import lru_cache

from fercam.defaults import DEFAULT_DETECTOR

__version__ = "0.1.0"
IMPORTED_AT = _time.monotonic()  # the benchmark's clock origin where /proc is missing
__all__ = ["analyze_image", "load_classifier", "load_detector", "load_voice_classifier"]


def analyze_image(bgr_image, detector: str = DEFAULT_DETECTOR) -> tuple:
    """The faces in one uint8 BGR image, each a `fercam.types.Face` (box, detector score, the seven
    probabilities in `fercam.types.EMOTIONS` order, `top` emotion, `unsure`), numbered from 1.

    The pipeline's own detect -> classify path, without tracking or smoothing, with the combined reading
    (`fercam.combined`: our FER2013 model and a second opinion; where the detector finds no face, the
    fallback detector the reading was fitted with looks). The models load on the first call and are reused."""
    from fercam.detection.common import check_image
    from fercam.pipeline import read_image

    check_image(bgr_image)
    return read_image(bgr_image, _shared_detector(detector), _shared_classifier())


@lru_cache(maxsize=4)
def _shared_detector(name: str):
    from fercam.detection.fallback import load_picture_detector

    return load_picture_detector(name, _shared_classifier().combiner.fallback_detector)


@lru_cache(maxsize=1)
def _shared_classifier():
    from fercam.combined import load_combined_reading

    return load_combined_reading()


def load_classifier(path=None, **options):
    """The shipped face-emotion model (or the model file at `path`); see `fercam.emotion`."""
    from fercam.emotion import load_classifier as load

    return load(path, **options)


def load_detector(name: str = DEFAULT_DETECTOR, **options):
    """A face detector by name ("mtcnn", "yunet", ...); see `fercam.detection`."""
    from fercam.detection import load_detector as load

    return load(name, **options)


def load_voice_classifier(path=None):
    """The shipped voice-emotion model; see `fercam.voice.classifier`."""
    from fercam.voice.classifier import load_voice_classifier as load

    return load(path)
