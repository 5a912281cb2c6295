"""The public library API and the value types, as someone using FER Cam from Python would."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import fercam
from fercam.combined import load_combined_reading
from fercam.pipeline import FaceReader, Mode, run_offline
from fercam.settings import Settings
from fercam.sources import open_source
from fercam.types import Box, Emotion, Face


def test_analyze_image_reads_the_smiling_astronaut(media_dir):
    (face,) = fercam.analyze_image(cv2.imread(str(media_dir / "skimage_astronaut.jpg")))
    assert face.id == 1 and face.top is Emotion.HAPPY and face.emotion == "happy"
    assert face.score > 0.9 and face.probs.shape == (7,) and face.probs.sum() == pytest.approx(1, abs=1e-3)
    assert 150 < face.box.center[0] < 260 and 50 < face.box.center[1] < 170  # her face, top centre


def test_analyze_image_finds_both_people_and_matches_the_pipeline(media_dir):
    path = media_dir / "two_people.jpg"
    faces = fercam.analyze_image(cv2.imread(str(path)))
    assert len(faces) == 2 and [f.id for f in faces] == [1, 2]
    seen = []
    reader = FaceReader(fercam.load_detector(), load_combined_reading(), mode=Mode.IMAGE)  # analyze_image's
    run_offline(open_source(str(path)), reader, [], Settings(), on_analysis=lambda a, f: seen.append(a))
    assert seen[0].faces == faces  # exactly the pipeline's detect -> classify


def test_analyze_image_refuses_what_is_not_an_image():
    with pytest.raises(ValueError, match="uint8 BGR image"):
        fercam.analyze_image(np.zeros((10, 10), np.float32))
    assert fercam.analyze_image(np.full((240, 320, 3), 127, np.uint8)) == ()


def test_faces_compare_and_hash_by_value_and_cannot_be_changed():
    probs = np.eye(7, dtype=np.float32)[Emotion.SURPRISE]
    a, b = Face(1, Box(0, 0, 10, 10), 0.9, probs), Face(1, Box(0, 0, 10, 10), 0.9, probs.copy())
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Face(2, Box(0, 0, 10, 10), 0.9, probs) and a.top is Emotion.SURPRISE
    probs[:] = 0  # the caller's array is not the face's
    assert a.top is Emotion.SURPRISE
    with pytest.raises(ValueError):
        a.probs[0] = 1.0
    with pytest.raises(ValueError, match="7 probabilities"):
        Face(1, Box(0, 0, 1, 1), 1.0, np.ones(6))
