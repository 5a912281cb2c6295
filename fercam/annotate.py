"""Overlays. Each annotator has one method, `annotate(image, analysis)`, and draws in place."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import cv2
import numpy as np

from fercam.emoji import paste_emoji
from fercam.settings import Settings
from fercam.types import EMOTIONS, Analysis, Emotion, Face

if TYPE_CHECKING:
    from fercam.body.cues import BodyCues

EMOTION_COLORS = {  # BGR, one per emotion so a glance tells the label
    Emotion.ANGRY: (50, 50, 230),
    Emotion.DISGUST: (60, 160, 60),
    Emotion.FEAR: (200, 120, 160),
    Emotion.HAPPY: (40, 200, 250),
    Emotion.SAD: (200, 130, 40),
    Emotion.SURPRISE: (30, 140, 255),
    Emotion.NEUTRAL: (200, 200, 200),
}
_STALE = (128, 128, 128)
_UNSURE = (235, 235, 235)
_FONT = cv2.FONT_HERSHEY_SIMPLEX
UNSURE_LABEL = "unsure"


def face_color(face: Face, stale: bool, honest: bool = False) -> tuple[int, int, int]:
    """`honest`: the user chose to see unsure faces as "unsure", so an unsure face gets no emotion's colour."""
    return _STALE if stale else _UNSURE if honest and face.unsure else EMOTION_COLORS[face.top]


def _scale(face: Face) -> float:
    """Text and line sizes follow the face, so overlays read the same at any distance."""
    return float(np.clip(face.box.width / 160, 0.45, 1.6))


def _inside(start: int, length: int, limit: int) -> int:
    """`start` moved the least so that [start, start + length) lies in [0, limit) (at 0 when it cannot)."""
    return max(0, min(start, limit - length))


def _place(image: np.ndarray, candidates: list[tuple[int, int]], width: int, height: int) -> tuple[int, int]:
    """The first spot (x, y) where a width x height block lies wholly in the frame. Else one that fits across,
    moved up or down into the frame: the side spots first (the first spot, under the face, moved up would
    cover it); else the first spot, moved in."""
    rows, cols = image.shape[:2]
    for x, y in candidates:
        if 0 <= x and x + width <= cols and 0 <= y and y + height <= rows:
            return x, y
    across = [(x, y) for x, y in candidates[1:] + candidates[:1] if 0 <= x and x + width <= cols] or candidates
    x, y = across[0]
    return _inside(x, width, cols), _inside(y, height, rows)


def _beside(face: Face, width: int) -> list[tuple[int, int]]:
    """Under the box, else left or right of it below the emoji's corner: where a block under a face goes."""
    x1, y1, x2, y2 = face.box.as_ints()
    below_emoji = y1 + max(16, round(face.box.width / 3)) + 4
    return [(x1, y2 + 4), (x1 - width - 4, below_emoji), (x2 + 4, below_emoji)]


def _outlined(image: np.ndarray, text: str, at: tuple[int, int], scale: float) -> None:
    """Light text with a dark rim: it reads on any fill, a yellow bar's as well as a dark one."""
    cv2.putText(image, text, at, _FONT, scale, (20, 20, 20), 3, cv2.LINE_AA)
    cv2.putText(image, text, at, _FONT, scale, (250, 250, 250), 1, cv2.LINE_AA)


@dataclass(frozen=True)
class BoxAnnotator:
    stale: bool = False
    honest: bool = False  # unsure faces drawn as unsure (Settings.unsure_faces)

    def annotate(self, image: np.ndarray, analysis: Analysis) -> np.ndarray:
        for face in analysis.faces:
            x1, y1, x2, y2 = face.box.as_ints()
            thickness = max(2, round(2 * _scale(face)))
            color = face_color(face, self.stale, self.honest)
            cv2.rectangle(image, (x1, y1), (x2, y2), color, thickness, cv2.LINE_AA)
        return image


@dataclass(frozen=True)
class LabelAnnotator:
    """'happy 87%' on a filled tab above the box (inside its top when the box touches the frame's top, so the
    bars under the box never cover it), always wholly in the frame; 'unsure' for an unsure face when `honest`."""

    stale: bool = False
    honest: bool = False

    def annotate(self, image: np.ndarray, analysis: Analysis) -> np.ndarray:
        for face in analysis.faces:
            reading = UNSURE_LABEL if self.honest and face.unsure else f"{face.emotion} {face.confidence:.0%}"
            text = reading + (" (stale)" if self.stale else "")
            scale = 0.6 * _scale(face)
            thickness = max(1, round(2 * _scale(face)))
            x1, y1, _, _ = face.box.as_ints()
            tab_w, tab_h, _ = _tab_size(text, scale, thickness)
            x = _inside(x1, tab_w, image.shape[1])
            top = _inside(y1 - tab_h if y1 >= tab_h else y1, tab_h, image.shape[0])
            color = face_color(face, self.stale, self.honest)
            if not paste_patch(image, _label_tab(text, scale, thickness, color), x, top):
                _draw_tab(image, text, (x, top), scale, thickness, color)
        return image


def _tab_size(text: str, scale: float, thickness: int) -> tuple[int, int, int]:
    """A label tab's width and height (its far corner's offsets: it covers one pixel more) and its text's height."""
    (tw, th), base = cv2.getTextSize(text, _FONT, scale, thickness)
    return tw + 8, th + base + 6, th


def _draw_tab(image: np.ndarray, text: str, at: tuple[int, int], scale: float, thickness: int, color) -> None:
    """A label's tab, its top-left corner `at`: a filled rectangle around the text (`LabelAnnotator`)."""
    width, height, th = _tab_size(text, scale, thickness)
    x, top = at
    cv2.rectangle(image, (x, top), (x + width, top + height), color, -1)
    cv2.putText(image, text, (x + 4, top + th + 3), _FONT, scale, (20, 20, 20), thickness, cv2.LINE_AA)


@lru_cache(maxsize=64)
def _label_tab(text: str, scale: float, thickness: int, color: tuple[int, int, int]) -> np.ndarray | None:
    """The tab as `_draw_tab` draws it, made once for the frames that show the same label (antialiased text is
    a third of the overlays' cost: 0.1-0.15 ms a label)."""
    width, height, _ = _tab_size(text, scale, thickness)
    return opaque_patch(width + 1, height + 1, lambda canvas, at: _draw_tab(canvas, text, at, scale, thickness, color))


def opaque_patch(width: int, height: int, draw) -> np.ndarray | None:
    """What `draw(canvas, (x, y))` paints in the `width` x `height` box at (x, y), when it covers that box whole and
    paints nothing outside it: pasting the patch then gives the same pixels as drawing on any picture. None when
    it does not (anti-aliased text whose rim runs past its box blends with the picture)."""
    margin, painted = 8, []
    for ground in (0, 255):  # drawn on black and on white: what shows the ground is not opaque
        canvas = np.full((height + 2 * margin, width + 2 * margin, 3), ground, np.uint8)
        draw(canvas, (margin, margin))
        patch = canvas[margin : margin + height, margin : margin + width].copy()
        canvas[margin : margin + height, margin : margin + width] = ground
        if (canvas != ground).any():
            return None
        painted.append(patch)
    if not np.array_equal(*painted):
        return None
    painted[0].flags.writeable = False
    return painted[0]


def paste_patch(image: np.ndarray, patch: np.ndarray | None, x: int, y: int) -> bool:
    """Copy `patch` into `image` at (x, y); False (nothing copied) for no patch or one that does not fit whole."""
    region = image[max(y, 0) : y + patch.shape[0], max(x, 0) : x + patch.shape[1]] if patch is not None else None
    if region is None or region.shape != patch.shape:
        return False
    region[:] = patch
    return True


@dataclass(frozen=True)
class EmojiAnnotator:
    """An emoji a third of the face wide, by the top-right corner of the box (none on an unsure face if `honest`)."""

    honest: bool = False

    def annotate(self, image: np.ndarray, analysis: Analysis) -> np.ndarray:
        for face in analysis.faces:
            if self.honest and face.unsure:
                continue
            size = max(16, round(face.box.width / 3))
            x1, y1, x2, _ = face.box.as_ints()
            x = x2 + 4 if x2 + 4 + size <= image.shape[1] else x1 - size - 4
            paste_emoji(image, face.top, size, x, y1)
        return image


def _bar_text_scale(face: Face) -> float:
    return max(0.4, 0.35 * _scale(face))  # below 0.4 OpenCV's letters blur into each other


def bars_rect(face: Face, image: np.ndarray) -> tuple[int, int, int, int]:
    """(x, y, width, height) of the seven bars: under the box, else beside it, always in the frame."""
    (_, th), base = cv2.getTextSize("Ag", _FONT, _bar_text_scale(face), 1)
    bar_h = max(th + base + 4, round(12 * _scale(face)))
    width = max(90, face.box.as_ints()[2] - face.box.as_ints()[0])
    height = 7 * (bar_h + 2)
    return (*_place(image, _beside(face, width), width, height), width, height)


@dataclass(frozen=True)
class ProbabilityAnnotator:
    """Seven bars under the box (beside it where the frame ends), one per emotion, each named in outlined text."""

    def annotate(self, image: np.ndarray, analysis: Analysis) -> np.ndarray:
        for face in analysis.faces:
            x, y, width, height = bars_rect(face, image)
            bar_h, scale = height // 7 - 2, _bar_text_scale(face)
            for i, (name, p) in enumerate(zip(EMOTIONS, face.probs)):
                top = y + i * (bar_h + 2)
                cv2.rectangle(image, (x, top), (x + width, top + bar_h), (40, 40, 40), -1)
                cv2.rectangle(
                    image, (x, top), (x + round(width * float(p)), top + bar_h), EMOTION_COLORS[Emotion(i)], -1
                )
                _outlined(image, name, (x + 3, top + bar_h - 4), scale)
        return image


@dataclass(frozen=True)
class CueStripAnnotator:
    """Body-language cues as small chips under the face box (under the bars when those show): a cue
    that is on stands out, an unremarkable one is dim, and one whose body part is not seen reads "?"."""

    cues: Mapping[int, BodyCues]
    below_probs: bool = False

    LABELS = {"arms_crossed": "arms crossed", "hand_at_face": "hand at face", "shoulders_raised": "shoulders up"}
    QUIET = {"no", "upright", "neutral", "still"}

    def annotate(self, image: np.ndarray, analysis: Analysis) -> np.ndarray:
        for face in analysis.faces:
            if face.id in self.cues:
                self._strip(image, face, self.cues[face.id])
        return image

    def _strip(self, image: np.ndarray, face: Face, body: BodyCues) -> None:
        scale, (x1, _, x2, _) = 0.4 * _scale(face), face.box.as_ints()
        (_, th), base = cv2.getTextSize("Ag", _FONT, scale, 1)
        row_h = th + base + 6
        chips = [
            (name, f"{self.LABELS.get(name, name)}: {cue.state if cue.known else '?'}") for name, cue in body.items()
        ]
        widths = [cv2.getTextSize(text, _FONT, scale, 1)[0][0] + 8 for _, text in chips]
        wrap = min(image.shape[1], max(2 * (x2 - x1), 160, *widths))  # near the face, not across a neighbour
        at, x, y = [], 0, 0  # each chip's offset in the strip, wrapped into rows
        for width in widths:
            if x and x + width > wrap:
                x, y = 0, y + row_h + 2
            at.append((x, y))
            x += width + 4
        strip_w, strip_h = max(dx + w for (dx, _), w in zip(at, widths)), y + row_h
        spots = _beside(face, strip_w)
        if self.below_probs:  # under the bars, wherever they went
            bx, by, bw, bh = bars_rect(face, image)
            spots = [(bx, by + bh + 4), (bx - strip_w - 4, by), (bx + bw + 4, by)]
        left, top = _place(image, spots, strip_w, strip_h)
        for (name, text), width, (dx, dy) in zip(chips, widths, at):
            cue = getattr(body, name)
            fill = (90, 90, 90) if not cue.known else (60, 60, 60) if cue.state in self.QUIET else (170, 110, 30)
            cx, cy = left + dx, top + dy
            cv2.rectangle(image, (cx, cy), (cx + width, cy + row_h), fill, -1)
            cv2.putText(image, text, (cx + 4, cy + th + 3), _FONT, scale, (240, 240, 240), 1, cv2.LINE_AA)


def annotators_for(settings: Settings, *, stale: bool = False, body: Mapping[int, BodyCues] | None = None) -> list:
    """The overlays the user switched on; none while overlays are paused."""
    if settings.paused:
        return []
    chosen: list = []
    honest = settings.unsure_faces == "unsure"
    if settings.show_boxes:
        chosen.append(BoxAnnotator(stale, honest))
    if settings.show_labels:
        chosen.append(LabelAnnotator(stale, honest))
    if settings.show_emoji and not stale:
        chosen.append(EmojiAnnotator(honest))
    if settings.show_probs and not stale:
        chosen.append(ProbabilityAnnotator())
    if settings.body_cues and body is not None and not stale:
        chosen.append(CueStripAnnotator(body, below_probs=settings.show_probs))
    return chosen


def annotate(
    image: np.ndarray,
    analysis: Analysis | None,
    settings: Settings,
    *,
    stale: bool = False,
    body: Mapping[int, BodyCues] | None = None,
) -> np.ndarray:
    """A copy of `image` with every chosen overlay drawn for `analysis` (the body cues too); the voice's badge is
    `fercam.voice_marks`'."""
    out = image.copy()
    if analysis is not None:
        for annotator in annotators_for(settings, stale=stale, body=body):
            annotator.annotate(out, analysis)
    return out


def message_frame(text: str, width: int, height: int) -> np.ndarray:
    """A dark frame with a centred message, e.g. while the camera is disconnected."""
    image = np.full((height, width, 3), 32, np.uint8)
    scale = max(0.6, width / 1280)
    (tw, th), _ = cv2.getTextSize(text, _FONT, scale, 2)
    cv2.putText(image, text, ((width - tw) // 2, (height + th) // 2), _FONT, scale, (230, 230, 230), 2, cv2.LINE_AA)
    return image
