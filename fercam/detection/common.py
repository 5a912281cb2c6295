"""What every detector shares: the input check, box clipping and the landmark order."""

from __future__ import annotations

import numpy as np

from fercam.types import Box

# Landmark order of every detector that has them: left eye, right eye, nose, mouth left, mouth right.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


def check_image(image: object) -> None:
    """Refuse anything but a uint8 BGR (H, W, 3) image, with a message that says what came instead."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"expected a uint8 BGR image (numpy array of shape (H, W, 3)), got {type(image).__name__}")
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) == 0:
        raise ValueError(f"expected a uint8 BGR image of shape (H, W, 3), got {image.dtype} {image.shape}")


def clip_box(x1: float, y1: float, x2: float, y2: float, shape: tuple[int, ...]) -> Box:
    """A box clipped to an image of `shape` (H, W, ...)."""
    height, width = shape[:2]
    return Box(min(max(x1, 0.0), width), min(max(y1, 0.0), height), min(max(x2, 0.0), width), min(max(y2, 0.0), height))
