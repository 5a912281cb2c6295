"""Emoji faces drawn as vectors at the exact size asked for.

No emoji font or image files are needed, so they look the same on every machine and
stay crisp from 16 px to full screen. Each face is drawn 4x oversampled with
anti-aliased primitives, then reduced, and cached per (emotion, size).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from fercam.types import Emotion

_OVERSAMPLE = 4
_SHIFT = 4  # cv2 fixed-point bits, for sub-pixel precision
_INK = (0, 52, 89)  # dark brown outline and features (BGR)
_YELLOW = (51, 204, 255)
# Skin tones: yellow, except a red angry face, a green disgusted one and a pale frightened one.
_FACE = {emotion: _YELLOW for emotion in Emotion} | {
    Emotion.ANGRY: (58, 85, 232),
    Emotion.DISGUST: (80, 200, 150),
    Emotion.FEAR: (240, 210, 160),
}
_TEAR = (245, 170, 80)
_MOUTH = (40, 40, 150)


class _Canvas:
    """Drawing in unit coordinates (0..1) on a square BGR image with an alpha mask."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.image = np.zeros((size, size, 3), np.uint8)
        self.alpha = np.zeros((size, size), np.uint8)

    def _pt(self, x: float, y: float) -> tuple[int, int]:
        return round(x * self.size * (1 << _SHIFT)), round(y * self.size * (1 << _SHIFT))

    def _len(self, v: float) -> int:
        return max(1, round(v * self.size * (1 << _SHIFT)))

    def _width(self, w: float) -> int:
        return max(1, round(w * self.size))

    def disc(self, x: float, y: float, r: float, color, *, mask: bool = False) -> None:
        cv2.circle(self.image, self._pt(x, y), self._len(r), color, -1, cv2.LINE_AA, _SHIFT)
        if mask:
            cv2.circle(self.alpha, self._pt(x, y), self._len(r), 255, -1, cv2.LINE_AA, _SHIFT)

    def ellipse(self, x, y, rx, ry, color, *, start=0, end=360, width: float = 0.0) -> None:
        thickness = -1 if width <= 0 else self._width(width)
        axes = (self._len(rx), self._len(ry))
        cv2.ellipse(self.image, self._pt(x, y), axes, 0, start, end, color, thickness, cv2.LINE_AA, _SHIFT)

    def line(self, points: list[tuple[float, float]], color, width: float) -> None:
        pts = np.array([self._pt(x, y) for x, y in points], np.int32)
        cv2.polylines(self.image, [pts], False, color, self._width(width), cv2.LINE_AA, _SHIFT)

    def polygon(self, points: list[tuple[float, float]], color) -> None:
        pts = np.array([self._pt(x, y) for x, y in points], np.int32)
        cv2.fillPoly(self.image, [pts], color, cv2.LINE_AA, _SHIFT)


def _eyes(c: _Canvas, ry: float = 0.07, y: float = 0.40) -> None:
    for x in (0.35, 0.65):
        c.ellipse(x, y, 0.045, ry, _INK)


def _brows(c: _Canvas, inner_y: float, outer_y: float) -> None:
    c.line([(0.22, outer_y), (0.43, inner_y)], _INK, 0.045)
    c.line([(0.78, outer_y), (0.57, inner_y)], _INK, 0.045)


def _draw_features(c: _Canvas, emotion: Emotion) -> None:
    if emotion == Emotion.HAPPY:
        for x in (0.35, 0.65):
            c.ellipse(x, 0.42, 0.07, 0.06, _INK, start=180, end=360, width=0.045)
        c.ellipse(0.5, 0.58, 0.25, 0.22, _MOUTH, start=0, end=180)
        c.ellipse(0.5, 0.58, 0.25, 0.22, _INK, start=0, end=180, width=0.03)
        c.line([(0.25, 0.58), (0.75, 0.58)], _INK, 0.03)
    elif emotion == Emotion.SAD:
        _eyes(c, y=0.45)
        _brows(c, 0.28, 0.35)
        c.ellipse(0.5, 0.82, 0.17, 0.11, _INK, start=200, end=340, width=0.045)
        c.ellipse(0.31, 0.60, 0.04, 0.06, _TEAR)
    elif emotion == Emotion.ANGRY:
        _eyes(c, ry=0.05, y=0.47)
        _brows(c, 0.40, 0.30)
        c.ellipse(0.5, 0.83, 0.18, 0.10, _INK, start=200, end=340, width=0.05)
    elif emotion == Emotion.SURPRISE:
        _eyes(c, ry=0.08)
        _brows(c, 0.22, 0.24)
        c.ellipse(0.5, 0.70, 0.09, 0.12, _INK)
    elif emotion == Emotion.FEAR:
        for x in (0.35, 0.65):
            c.disc(x, 0.42, 0.085, (255, 255, 255))
            c.disc(x, 0.42, 0.035, _INK)
        _brows(c, 0.22, 0.30)
        c.ellipse(0.5, 0.72, 0.16, 0.07, _INK)
    elif emotion == Emotion.DISGUST:
        c.line([(0.27, 0.42), (0.42, 0.40)], _INK, 0.045)
        c.line([(0.58, 0.40), (0.73, 0.42)], _INK, 0.045)
        c.line([(0.30, 0.72), (0.40, 0.66), (0.50, 0.72), (0.60, 0.66), (0.70, 0.72)], _INK, 0.045)
    else:  # neutral
        _eyes(c)
        c.line([(0.33, 0.70), (0.67, 0.70)], _INK, 0.05)


@lru_cache(maxsize=256)
def render_emoji(emotion: Emotion, size: int) -> np.ndarray:
    """A BGRA emoji of `size` x `size` pixels (alpha 0 outside the face)."""
    big = _Canvas(max(1, size) * _OVERSAMPLE)
    big.disc(0.5, 0.5, 0.47, _INK, mask=True)
    big.disc(0.5, 0.5, 0.44, _FACE[Emotion(emotion)])
    _draw_features(big, Emotion(emotion))
    bgra = np.dstack([big.image, big.alpha])
    small = cv2.resize(bgra, (size, size), interpolation=cv2.INTER_AREA)
    small.flags.writeable = False
    return small


@lru_cache(maxsize=256)
def _layers(emotion: Emotion, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The emoji's colour times its alpha, and what it leaves of the picture under it (1 - alpha), as float32:
    the blend's constant half, kept so that each frame pays only for the picture's half."""
    bgra = render_emoji(emotion, size)
    alpha = bgra[..., 3:4].astype(np.float32) / 255
    return bgra[..., :3] * alpha, 1 - alpha


def paste_emoji(image: np.ndarray, emotion: Emotion, size: int, x: int, y: int) -> None:
    """Alpha-blend the `size` px emoji of `emotion` into `image` with its top-left corner at (x, y), clipped."""
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + size, image.shape[1]), min(y + size, image.shape[0])
    if x0 >= x1 or y0 >= y1:
        return
    ink, keep = _layers(emotion, size)
    window = np.s_[y0 - y : y1 - y, x0 - x : x1 - x]
    region = image[y0:y1, x0:x1]
    region[:] = (ink[window] + region * keep[window]).astype(np.uint8)
