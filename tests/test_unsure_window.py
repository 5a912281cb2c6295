""" "Show unsure faces as: label / unsure" as a user meets it: the window's control and the OBS overlay, in Debian's
Chromium, over a real `fercam run --serve` reading a clip of one face the combined reading is unsure of (made from the
repository's fer_woman2.mp4)."""

from __future__ import annotations

import json
import subprocess
import time

import cv2
import numpy as np
import pytest
from conftest import requires_system_packages
from window_helpers import browser_page, serve, stop

import fercam
from fercam.combined import Combiner

SIDE = 480  # the clip's size, and the overlay page's: one pixel of the page is one pixel of the picture
UNSURE_GREY = np.array([235, 235, 235])


def largest(faces):
    return max(faces, key=lambda f: f.box.width * f.box.height) if faces else None


def close_ups(clip):
    """Every 10th frame of `clip` cut to a square around its face (twice the face's size), at the test's size."""
    video, index = cv2.VideoCapture(str(clip)), 0
    while (frame := video.read()[1]) is not None:
        face = largest(fercam.analyze_image(frame)) if index % 10 == 0 else None
        index += 1
        if face is not None:
            box = face.box
            side, cx, cy = max(box.width, box.height), (box.x1 + box.x2) / 2, (box.y1 + box.y2) / 2
            top, left = round(max(0, cy - side)), round(max(0, cx - side))
            square = frame[top : round(cy + side), left : round(cx + side)]
            yield cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_CUBIC)
    video.release()


@pytest.fixture(scope="module")
def unsure_clip(media_dir, tmp_path_factory):
    """Six seconds of a close-up from fer_woman2.mp4 the reading is least sure of (well under the threshold)."""
    requires_system_packages("ffmpeg")
    threshold = Combiner.load().unsure_below
    folder = tmp_path_factory.mktemp("unsure")
    for big in close_ups(media_dir / "fer_woman2.mp4"):  # a picture at the clip's size, as the live reader sees it
        face = largest(fercam.analyze_image(big))
        if face is not None and face.confidence < threshold - 0.12 and face.box.width > SIDE / 3:
            break
    else:
        pytest.fail("no close-up of fer_woman2.mp4 the reading is clearly unsure of")
    cv2.imwrite(str(folder / "face.png"), big)
    clip = folder / "unsure.mp4"
    command = ["ffmpeg", "-v", "error", "-loop", "1", "-i", str(folder / "face.png"), "-t", "6", "-r", "30"]
    subprocess.run([*command, "-c:v", "libx264", "-crf", "12", "-pix_fmt", "yuv420p", str(clip)], check=True)
    return clip


@pytest.fixture(scope="module")
def served(unsure_clip):
    folder = unsure_clip.parent
    proc, url = serve(unsure_clip, folder)
    yield {"proc": proc, "url": url, "folder": folder}
    stop(proc)


def shoot(overlay, path):
    shot = cv2.imdecode(np.frombuffer(overlay.screenshot(omit_background=True), np.uint8), cv2.IMREAD_UNCHANGED)
    cv2.imwrite(str(path), shot)
    print(f"overlay screenshot: {path}")
    return shot


def left_edge(shot, box) -> np.ndarray:
    """The drawn pixels (BGR) of the box's left side."""
    x1, y1, _, y2 = (round(v) for v in box)
    strip = shot[y1 + 10 : y2 - 10, max(0, x1 - 3) : x1 + 4]
    return strip[strip[:, :, 3] > 200][:, :3].astype(int)


def right_of(shot, box) -> float:
    """How much is drawn beside the box's top-right corner, where the emoji goes."""
    x1, y1, x2, _ = (round(v) for v in box)
    side = (x2 - x1) // 3
    return float(shot[y1 + 4 : y1 + side - 4, x2 + 8 : x2 + side, 3].mean())


def test_the_unsure_setting_changes_what_the_overlay_draws(served):
    with browser_page(served["url"]) as (browser, control):
        control.wait_for_selector("#unsure-faces")
        control.wait_for_function("() => document.getElementById('unsure-faces').value === 'unsure'")  # default
        overlay = browser.new_page(viewport={"width": SIDE, "height": SIDE})
        overlay.goto(served["url"].replace("/?", "/overlay?"))
        ready = "() => { const a = window.fercamOverlay.last(); return a && a.faces.length && a.faces[0].unsure; }"
        overlay.wait_for_function(ready, timeout=60000)
        overlay.wait_for_function("() => window.fercamOverlay.settings().unsure_faces === 'unsure'")
        time.sleep(0.5)  # the emoji images have loaded
        box = overlay.evaluate("window.fercamOverlay.last().faces[0].box")
        honest = shoot(overlay, served["folder"] / "overlay-unsure.png")
        edge = left_edge(honest, box)
        assert len(edge) > 50 and (np.abs(edge - UNSURE_GREY).max(axis=1) < 12).mean() > 0.8  # a grey box
        assert right_of(honest, box) < 5  # and no emoji

        control.select_option("#unsure-faces", "label")  # as a user: the window's control
        overlay.wait_for_function("() => window.fercamOverlay.settings().unsure_faces === 'label'", timeout=10000)
        overlay.wait_for_function(ready, timeout=10000)  # the face is still one the reading is unsure of
        time.sleep(0.3)
        face = overlay.evaluate("window.fercamOverlay.last().faces[0]")
        color = overlay.evaluate(f"FERCAM.COLORS[{json.dumps(face['emotion'])}]")
        emotion_bgr = np.array([int(color[i : i + 2], 16) for i in (5, 3, 1)])
        labelled = shoot(overlay, served["folder"] / "overlay-label.png")
        edge = left_edge(labelled, face["box"])
        assert len(edge) > 50 and (np.abs(edge - emotion_bgr).max(axis=1) < 12).mean() > 0.8  # the emotion's colour
        assert right_of(labelled, face["box"]) > 20  # and its emoji
