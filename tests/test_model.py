"""The shipped emotion model: its API contract, real faces, and a committed accuracy baseline."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

import fercam
from fercam import load_classifier, load_detector
from fercam.emotion import ModelError
from fercam.pipeline import face_crops
from fercam.training.data import load_splits
from fercam.training.evaluate import evaluate_probs, predict
from fercam.types import EMOTIONS

BASELINE = Path(__file__).resolve().parents[1] / "models" / "fer_cnn_baseline.json"


@pytest.fixture(scope="module")
def classifier():
    return load_classifier()


def test_contract_shape_order_and_sums(classifier):
    rng = np.random.default_rng(0)
    faces = [rng.integers(0, 256, (48, 48), dtype=np.uint8), rng.integers(0, 256, (120, 90), dtype=np.uint8)]
    probs = classifier.predict_faces(faces)
    assert probs.shape == (2, 7) and probs.dtype == np.float32
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs >= 0).all()
    assert classifier.labels == ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
    batch = classifier.predict_faces(np.stack([faces[0]] * 3))
    assert np.allclose(batch, probs[0], atol=1e-5)  # batch size changes nothing
    assert classifier.predict_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_wrong_dtype_or_shape_is_a_clear_error(classifier):
    with pytest.raises(ValueError, match="uint8 grayscale"):
        classifier.predict_faces(np.zeros((1, 48, 48), np.float32))
    with pytest.raises(ValueError, match="uint8 grayscale"):
        classifier.predict_faces(np.zeros((1, 48, 48, 3), np.uint8))


def test_only_the_training_commands_import_the_training_package():
    """Training may import the runtime, never the other way: the app's modules (the emotion model's Keras
    loader and the reference detector included) take TensorFlow through `fercam.extras`."""
    package = Path(fercam.__file__).parent
    importers = set()
    for path in package.rglob("*.py"):
        name = path.relative_to(package).as_posix()
        if name.startswith("training/"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            modules = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            modules += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if any(module.startswith("fercam.training") for module in modules):
                importers.add(name)
    assert importers == {"apps/model_commands.py"}  # `fercam train` and `fercam evaluate`


def test_a_file_that_is_not_a_model_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"definitely not a flatbuffer")
    with pytest.raises(ModelError, match="not a LiteRT model"):
        load_classifier(junk)
    with pytest.raises(ModelError, match="not found"):
        load_classifier(tmp_path / "missing.tflite")


def _faces(media_dir, name):
    image = cv2.imread(str(media_dir / name))
    detections = load_detector("mtcnn").detect(image)
    return face_crops(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), [d.box for d in detections])


def test_the_smiling_astronaut_is_happy(classifier, media_dir):
    (face,) = _faces(media_dir, "skimage_astronaut.jpg")
    probs = classifier.predict_faces([face])[0]
    assert EMOTIONS[int(np.argmax(probs))] == "happy", dict(zip(EMOTIONS, probs.round(3)))


def test_shipped_model_keeps_its_public_test_baseline(classifier, fer_npz):
    baseline = json.loads(BASELINE.read_text())
    test = load_splits(fer_npz).test
    metrics = evaluate_probs(predict(classifier, test.x), test.y)
    assert metrics["accuracy"] >= baseline["accuracy_min"], metrics["accuracy"]
    for name, floor in baseline["recall_min"].items():
        assert metrics["per_class"][name]["recall"] >= floor, (name, metrics["per_class"][name])


def test_alternating_views_average_to_both_views_at_half_the_cost():
    from fercam.emotion import load_classifier as load

    faces = noise_faces()
    both = load(views="both").predict_faces(faces)
    alternating = load(views="alternating", num_threads=1)
    first, second = alternating.predict_faces(faces), alternating.predict_faces(faces)
    assert not np.allclose(first, second)  # the face, then its flipped image
    assert np.allclose((first + second) / 2, both, atol=1e-5)


def noise_faces():
    rng = np.random.default_rng(1)
    return [rng.integers(0, 256, (48, 48), dtype=np.uint8) for _ in range(3)]
