"""A photo as the camera of the FER Cam window (`fercam run --no-tray --serve --source photo.jpg`), in Debian's
Chromium: the picture repeats at the output rate like a camera, annotated, and the status stays "running"."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest
from window_helpers import browser_page, canvas_image, serve, stop

from fercam.annotate import EMOTION_COLORS
from fercam.types import Emotion


@pytest.fixture(scope="module")
def served(media_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("window-photo")
    proc, url = serve(media_dir / "two_people.jpg", folder)
    yield {"proc": proc, "url": url, "folder": folder}
    stop(proc)


@pytest.fixture(scope="module")
def page(served):
    with browser_page(served["url"]) as (_, page):
        page.wait_for_function(
            "() => window.fercamPreview.frames > 0 && window.fercamLatest && window.fercamLatest.faces.length == 2",
            timeout=60000,
        )
        yield page


def share_in_colour(pixels: np.ndarray, bgr: tuple[int, int, int]) -> float:
    """The share of `pixels` within JPEG noise of the colour `bgr`."""
    return float((np.abs(pixels.astype(int) - bgr).max(axis=-1) < 45).mean())


def test_a_photo_as_the_camera_repeats_at_the_output_rate_with_its_boxes(page, served, media_dir):
    frames, started = page.evaluate("window.fercamPreview.frames"), time.monotonic()
    time.sleep(3)
    preview_fps = (page.evaluate("window.fercamPreview.frames") - frames) / (time.monotonic() - started)
    status = json.loads(page.evaluate("fetch('/api/state' + location.search).then(r => r.text())"))["status"]
    shown, photo = canvas_image(page), cv2.imread(str(media_dir / "two_people.jpg"))
    page.screenshot(path=str(served["folder"] / "photo.png"))
    print(f"preview {preview_fps:.1f} fps, video {status['fps']} fps; {served['folder'] / 'photo.png'}")
    assert status["running"] and "running" in page.inner_text("#state")
    assert status["fps"] >= 10 and preview_fps >= 5  # the picture keeps coming, as from a camera (30 fps when idle)
    assert shown.shape == photo.shape  # the photo at its own size: it fits the 1280x720 output
    faces = page.evaluate("window.fercamLatest.faces")
    assert len(faces) == 2 and faces[0]["box"][0] != faces[1]["box"][0]
    for face in faces:  # each face's box is drawn in its emotion's colour, where the photo has no such line
        x1, y1, x2, y2 = (round(v) for v in face["box"])
        colour = EMOTION_COLORS[Emotion[face["emotion"].upper()]]
        sides = [(slice(y1 + 8, y2 - 8), slice(x, x + 1)) for x in (x1, x2)]
        sides += [(slice(y2, y2 + 1), slice(x1 + 8, x2 - 8))]  # the top is under the label's tab
        drawn = np.concatenate([shown[side].reshape(-1, 3) for side in sides])
        bare = np.concatenate([photo[side].reshape(-1, 3) for side in sides])
        assert share_in_colour(drawn, colour) > 0.8 > 0.2 > share_in_colour(bare, colour), face
