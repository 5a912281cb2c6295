"""A detector with a second chance: where the first finds no face in a picture, the second looks.

For unrelated pictures (IMAGE mode, `fercam.analyze_image`): on tight crops of real photographs MTCNN
misses about one face in twenty that YuNet finds (`python -m fercam.training.fit_combiner`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fercam.contracts import Detector
from fercam.types import Box, Detection


class FallbackDetector:
    def __init__(self, first: Detector, second: Detector) -> None:
        self.first, self.second = first, second

    def detect(self, bgr_image: np.ndarray) -> list[Detection]:
        return self.first.detect(bgr_image) or self.second.detect(bgr_image)

    def detect_near(self, bgr_image: np.ndarray, boxes: Sequence[Box]) -> list[Detection]:
        return self.first.detect_near(bgr_image, boxes)


def load_picture_detector(name: str, fallback: str | None) -> Detector:
    """The detector `name`, with the `fallback` detector (the combined reading's) looking where it finds none."""
    from fercam.detection import load_detector

    detector = load_detector(name)
    return detector if fallback in (None, name) else FallbackDetector(detector, load_detector(fallback))
