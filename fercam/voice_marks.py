"""The voice on the face that speaks: its badge beside that face, with a sound-wave mark and, where the voice names
an emotion, the person's reading (face and voice pooled: "face+voice: angry 64%", or "face happy / voice angry:
disagree" in amber). A voice that no visible face matches stays in the corner as "voice (off screen)"; with
nobody judged speaking, the corner badge is as before. Body cues are drawn apart (annotate.py), never mixed in.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np

from fercam.annotate import _inside, _place, _scale, opaque_patch, paste_patch
from fercam.emoji import paste_emoji
from fercam.settings import Settings
from fercam.speaking.attribution import Speaking
from fercam.speaking.heard import off_screen, person_reading, speakers
from fercam.types import Analysis, Emotion, Face

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
        draw_voice_badge(image, voice, faces, who="voice (off screen)" if off_screen(speaking) else "voice")


def draw_voice_badge(
    image: np.ndarray, voice: np.ndarray | str, faces: tuple[Face, ...] = (), *, who: str = "voice"
) -> None:
    """The voice in the top-left corner (top-right when a face's box or label is there): an emoji and
    "voice: happy 70%", or "voice: unsure" / "voice: no speech" (`who`: "voice (off screen)", say). Pasted from its
    first drawing (`_badge`): drawing it, emoji and anti-aliased text, took 0.25 ms a frame, the copy a few µs."""
    text = voice_text(voice, who)
    emotion = None if isinstance(voice, str) else Emotion(int(np.argmax(voice)))
    size = max(24, image.shape[0] // 14)
    width, height, _ = _badge_size(text, emotion, size)
    left = 6 if not _covers(faces, 6, width, height) else image.shape[1] - 6 - width
    if not paste_patch(image, _badge(text, emotion, size), left, 6):
        _draw_badge(image, text, emotion, size, (left, 6))


def voice_text(voice: np.ndarray | str, who: str = "voice") -> str:
    """ "voice: happy 70%", or "voice: unsure" / "voice: no speech" for a window that names no emotion."""
    if isinstance(voice, str):
        return f"{who}: {voice}"
    return f"{who}: {Emotion(int(np.argmax(voice))).label} {float(np.max(voice)):.0%}"


def _badge_size(text: str, emotion: Emotion | None, size: int) -> tuple[int, int, int]:
    """The badge's width and height and its text's height, for an emoji of `size` px."""
    (tw, th), _ = cv2.getTextSize(text, _FONT, size / 40, 2)
    return 12 + (0 if emotion is None else size) + tw, 8 + size, th


def _draw_badge(image: np.ndarray, text: str, emotion: Emotion | None, size: int, at: tuple[int, int]) -> None:
    left, top = at
    width, height, th = _badge_size(text, emotion, size)
    icon = 0 if emotion is None else size
    cv2.rectangle(image, (left, top), (left + width, top + height), _FILL, -1)
    if emotion is not None:
        paste_emoji(image, emotion, size, left + 4, top + 4)
    cv2.putText(image, text, (left + 8 + icon, top + 4 + (size + th) // 2), _FONT, size / 40, _TEXT, 2, cv2.LINE_AA)


@lru_cache(maxsize=32)
def _badge(text: str, emotion: Emotion | None, size: int) -> np.ndarray | None:
    """The badge as `_draw_badge` draws it (a new reading every half second: the latest few are kept)."""
    width, height, _ = _badge_size(text, emotion, size)
    return opaque_patch(width + 1, height + 1, lambda canvas, at: _draw_badge(canvas, text, emotion, size, at))


def _covers(faces: tuple[Face, ...], left: int, width: int, height: int) -> bool:
    """A badge at (left, 6) would hide a face's box or the label tab above it (about 30 px)."""
    return any(
        f.box.x1 < left + width and f.box.x2 > left and f.box.y1 - 30 < 6 + height and f.box.y2 > 6 for f in faces
    )


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
