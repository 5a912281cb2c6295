"""Overlays stay whole inside the frame wherever the face is, and their words read on any fill."""

from __future__ import annotations

import numpy as np
import pytest

from fercam.annotate import annotate, bars_rect
from fercam.body.cues import BodyCues, Cue
from fercam.pipeline import render
from fercam.settings import Settings
from fercam.types import Analysis, Box, Face, Frame

PROBS = np.array([0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0], np.float32)  # happy: its bar is all yellow
CUES = BodyCues(
    arms_crossed=Cue("yes", 0.9),
    hand_at_face=Cue("no", 0.8),
    shoulders_raised=Cue("no", 0.7),
    lean=Cue("upright", 0.6),
    head=Cue("moving", 0.5),
)  # with "openness" unknown: three rows of chips under a 110 px face
EVERYTHING = Settings(show_emoji=False, show_probs=True, body_cues=True)  # the emoji may hide under the bars


def drawn(box: tuple[int, int, int, int], size: tuple[int, int]) -> tuple[int, np.ndarray]:
    """Pixels the overlays change on a black frame of `size` (height, width), and the frame."""
    face = Face(1, Box(*map(float, box)), 0.99, PROBS)
    out = annotate(np.zeros((*size, 3), np.uint8), Analysis(0, 0.0, (face,)), EVERYTHING, body={1: CUES})
    return int(out.any(axis=2).sum()), out


@pytest.mark.parametrize(
    "box",
    [(525, 245, 635, 355), (5, 245, 115, 355), (265, 2, 375, 112), (525, 2, 635, 112)],
    ids=["bottom-right", "bottom-left", "top", "top-right"],
)
def test_every_overlay_stays_whole_at_the_frames_edge(box):
    """As many pixels drawn as for the same face in the middle of a large frame: nothing cut off."""
    x1, y1, x2, y2 = box
    whole, _ = drawn((600, 400, 600 + x2 - x1, 400 + y2 - y1), (1200, 1400))
    at_edge, _ = drawn(box, (360, 640))
    assert at_edge == pytest.approx(whole, rel=0.01)


def test_the_label_of_a_face_at_the_top_is_not_under_its_bars():
    _, out = drawn((265, 2, 375, 112), (360, 640))
    assert (out[4:10, 268:300] == (40, 200, 250)).all(axis=2).mean() > 0.5  # happy's yellow tab inside the box top


def test_probability_names_read_on_a_yellow_bar():
    face = Face(1, Box(100.0, 50.0, 210.0, 160.0), 0.99, PROBS)
    out = annotate(np.zeros((400, 400, 3), np.uint8), Analysis(0, 0.0, (face,)), Settings(show_probs=True))
    x, y, _, height = bars_rect(face, out)
    row = out[y + 3 * height // 7 : y + 4 * height // 7 - 2, x : x + 50]  # "happy" on its full bar
    light = (row >= 230).all(axis=2).sum()
    dark = (row <= 40).all(axis=2).sum()
    assert light > 5 and dark > 20  # light letters with a dark rim: readable on yellow (and on dark grey)


def test_the_voice_badge_leaves_a_face_in_the_top_left_corner_visible():
    face = Face(1, Box(10.0, 2.0, 120.0, 110.0), 0.99, PROBS, unsure=True)
    settings = Settings(show_emoji=False, voice=True)
    frame = Frame(np.zeros((360, 640, 3), np.uint8), 0, 0.0)
    alone = render(frame, Analysis(0, 0.0, ()), settings, voice="unsure")
    out = render(frame, Analysis(0, 0.0, (face,)), settings, voice="unsure")
    assert alone[:60, :200].any() and not alone[:60, 440:].any()  # top-left, where no face is
    assert out[:60, 440:].any()  # moved to the top-right
    assert (out[4:10, 14:40] == (235, 235, 235)).all(axis=2).mean() > 0.5  # the face's "unsure" tab shows


@pytest.mark.parametrize("box", [(600, 300, 760, 460), (0, 0, 40, 40), (1200, 650, 1280, 720), (100, 100, 700, 700)])
def test_a_label_tab_drawn_once_and_pasted_matches_one_drawn_on_the_picture(box, monkeypatch):
    """LabelAnnotator pastes a cached tab (twice: made, then reused): the pixels of one drawn on a noisy picture."""
    import fercam.annotate as annotate_module

    image = np.random.default_rng(1).integers(0, 255, (720, 1280, 3), np.uint8)
    analysis = Analysis(0, 0.0, (Face(1, Box(*map(float, box)), 0.99, PROBS),))
    pasted = [annotate_module.LabelAnnotator().annotate(image.copy(), analysis) for _ in range(2)]
    monkeypatch.setattr(annotate_module, "_label_tab", lambda *args: None)  # no cached tab: drawn on the picture
    drawn_here = annotate_module.LabelAnnotator().annotate(image.copy(), analysis)
    assert all(np.array_equal(image, drawn_here) for image in pasted)
