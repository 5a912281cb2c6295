"""Face detectors by name, so the app and the tools can swap them with one option.

Every detector satisfies `fercam.contracts.Detector`. "mtcnn" (the default) is MTCNN on
LiteRT; "yunet" is OpenCV's small CNN detector, faster and better than the Haar cascade it replaced on
the shared media (OpenCV 5 has no Haar cascades); "mtcnn-reference" is the `mtcnn` package itself
(needs TensorFlow; for comparison only).
"""

from __future__ import annotations

import importlib.util

from fercam.contracts import Detector
from fercam.defaults import DEFAULT_DETECTOR
from fercam.registry import Registry


def _mtcnn(**options) -> Detector:
    from fercam.detection.mtcnn import MTCNNLite

    return MTCNNLite(**options)


def _yunet(**options) -> Detector:
    from fercam.detection.yunet import YuNetDetector

    return YuNetDetector(**options)


def _reference(**options) -> Detector:
    from fercam.detection.reference import ReferenceMTCNN

    return ReferenceMTCNN(**options)


def _needs_tensorflow() -> str | None:
    missing = [m for m in ("tensorflow", "mtcnn") if importlib.util.find_spec(m) is None]
    return f"needs {' and '.join(missing)} (pip install 'fercam[train]')" if missing else None


DETECTORS = Registry("face detector")
DETECTORS.register("mtcnn", _mtcnn, help="MTCNN on LiteRT (default): accurate, with landmarks")
DETECTORS.register("yunet", _yunet, help="OpenCV's YuNet: fast, finds turned and partly covered faces")
DETECTORS.register(
    "mtcnn-reference",
    _reference,
    help="the mtcnn package on TensorFlow (slow; for comparison)",
    unavailable=_needs_tensorflow,
)


def load_detector(name: str = DEFAULT_DETECTOR, **options) -> Detector:
    """The detector registered as `name`, built with `options` (see each detector's class for them)."""
    return DETECTORS.create(name, **options)
