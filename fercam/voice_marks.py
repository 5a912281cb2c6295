"""The voice on the face that speaks: its badge beside that face, with a sound-wave mark and, where the voice names
an emotion, the person's reading (face and voice pooled: "face+voice: angry 64%", or "face happy / voice angry:
disagree" in amber). A voice that no visible face matches stays in the corner as "voice (off screen)"; with
nobody judged speaking, the corner badge is as before. Body cues are drawn apart (annotate.py), never mixed in.
"""

from __future__ import annotations

import cv2
import numpy as np

from fercam.annotate import _covers, _inside, _place, _scale, draw_voice_badge, voice_text
from fercam.settings import Settings
from fercam.speaking.attribution import Speaking
from fercam.speaking.heard import off_screen, person_reading, speakers
from fercam.types import Analysis, Box, Face

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_FILL, _TEXT = (30, 30, 30), (240, 240, 240)
AMBER = (0, 176, 255)  # BGR: the two readings disagree
MARK = (120, 230, 120)  # BGR: the speaking mark's green


def draw_heard_voice(
    image: np.ndarray,
    analysis: Analysis | None,
    settings: Settings,
    voice: np.ndarray | str | None,
    speaking: Speaking | None,
    *,
    stale: bool = False,
) -> None:
    """The voice badge where the voice belongs now: on each speaking face, in a corner as "voice (off screen)",
    else in the corner as ever."""
    if voice is None or not settings.voice or settings.paused:
        return
    faces = analysis.faces if analysis is not None else ()
    talking_ids = speakers(speaking) if not stale else set()
    talking = [face for face in faces if face.id in talking_ids]
    for face in talking:
        draw_face_voice(image, face, voice)
    if not talking:
        draw_corner_badge(image, voice, faces, who="voice (off screen)" if off_screen(speaking) else "voice")


class _CornerBadges:
    """`draw_voice_badge`'s pixels, drawn once per text, image size and corner and pasted after: the badge is
    opaque, so its patch is the same on every frame (drawing it, emoji and anti-aliased text, took 0.25 ms a frame,
    0.008 of a core at 30 fps; the copy a few µs). Which corner still follows the faces, by annotate's own rule."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._patches: dict[tuple, tuple[int, np.ndarray]] = {}  # (text, shape, right) -> (left, patch)

    def draw(self, image: np.ndarray, voice: np.ndarray | str, faces: tuple[Face, ...], who: str) -> None:
        text = voice_text(voice, who)
        _, patch = self._patch(image.shape, voice, text, who, right=False)
        height, width = patch.shape[0] - 1, patch.shape[1] - 1  # the rectangle's corners are both drawn
        left, patch = self._patch(image.shape, voice, text, who, right=_covers(faces, 6, width, height))
        image[6 : 6 + patch.shape[0], left : left + patch.shape[1]] = patch

    def _patch(self, shape: tuple, voice, text: str, who: str, *, right: bool) -> tuple[int, np.ndarray]:
        key = (text, shape, right)
        if key not in self._patches:
            if len(self._patches) >= self.keep:  # a new reading every half second: keep only the latest few
                self._patches.clear()
            canvas = np.zeros(shape, np.uint8)
            everywhere = (Face(0, Box(0, 0, shape[1], shape[0]), 1.0, np.full(7, 1 / 7)),) if right else ()
            draw_voice_badge(canvas, voice, everywhere, who=who)
            columns = np.flatnonzero(canvas[6].any(axis=1))  # the badge's filled rectangle starts at row 6
            rows = np.flatnonzero(canvas[:, columns[0]].any(axis=1))
            self._patches[key] = (int(columns[0]), canvas[6 : rows[-1] + 1, columns[0] : columns[-1] + 1].copy())
        return self._patches[key]


_BADGES = _CornerBadges()


def draw_corner_badge(image: np.ndarray, voice: np.ndarray | str, faces: tuple[Face, ...], who: str = "voice") -> None:
    """`draw_voice_badge(image, voice, faces, who=who)`, pasted from its first drawing (`_CornerBadges`)."""
    _BADGES.draw(image, voice, faces, who)


def draw_face_voice(image: np.ndarray, face: Face, voice: np.ndarray | str) -> None:
    """The speaking mark and the voice's reading above the face's label (beside the face where there is no room),
    and under it the person's reading."""
    scale = max(0.4, 0.5 * _scale(face))  # below 0.4 OpenCV's letters blur into each other
    person = person_reading(face, voice)
    lines = [(voice_text(voice), _TEXT)] + ([(person.label(), AMBER if person.disagree else _TEXT)] if person else [])
    sizes = [cv2.getTextSize(text, _FONT, scale, 1) for text, _ in lines]
    row = max(th + base for (_, th), base in sizes) + 6
    mark = row  # the sound-wave mark's square, before the first line
    width = 8 + mark + max(tw for (tw, _), _ in sizes)
    height = row * len(lines) + 4
    x1, y1, x2, y2 = face.box.as_ints()
    (_, th), base = cv2.getTextSize("Ag", _FONT, 0.6 * _scale(face), max(1, round(2 * _scale(face))))
    tab = th + base + 6  # the label tab's height (annotate.LabelAnnotator), which the badge sits above
    side = max(16, round(face.box.width / 3)) + 4  # below the emoji beside the box's top corner
    above = (_inside(x1, width, image.shape[1]), y1 - tab - height - 2)  # moved in from the frame's side
    spots = [above, (x2 + 4, y1 + side), (x1 - width - 4, y1 + side), (x1, y2 + 4)]
    left, top = _place(image, spots, width, height)
    cv2.rectangle(image, (left, top), (left + width, top + height), _FILL, -1)
    draw_mark(image, (left + 4 + mark // 2, top + 2 + row // 2), mark)
    for k, ((text, color), ((_, th), _)) in enumerate(zip(lines, sizes)):
        at = (left + 6 + mark if k == 0 else left + 6, top + 2 + k * row + (row + th) // 2)
        cv2.putText(image, text, at, _FONT, scale, color, 1, cv2.LINE_AA)


def draw_mark(image: np.ndarray, centre: tuple[int, int], size: int) -> None:
    """A sound-wave glyph: a dot and two arcs opening to the right, `size` across."""
    cx, cy = centre
    dot = max(2, size // 8)
    origin = (cx - size // 3, cy)
    cv2.circle(image, origin, dot, MARK, -1, cv2.LINE_AA)
    thickness = max(1, size // 10)
    for radius in (size // 3, 2 * size // 3):
        cv2.ellipse(image, origin, (radius, radius), 0, -45, 45, MARK, thickness, cv2.LINE_AA)
