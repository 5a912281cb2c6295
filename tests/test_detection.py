"""Face detectors: the LiteRT MTCNN must agree with the `mtcnn` package; the registry and YuNet must behave."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from fercam.detection import DETECTORS, load_detector
from fercam.types import Box, Detection

VIDEOS = ("fer_test.mp4", "fer_woman2.mp4")
FRAMES_PER_VIDEO = 15
FINAL_THRESHOLD = 0.8  # ONet's threshold, the same in both detectors
MATCH_IOU = 0.7


def video_frames(path: Path, count: int) -> dict[str, np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    total = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    frames = {}
    for index in np.linspace(0, total - 1, count).astype(int):
        capture.set(cv2.CAP_PROP_POS_FRAMES, int(index))
        ok, frame = capture.read()
        if ok:
            frames[f"{path.name}#{index}"] = frame
    capture.release()
    return frames


@pytest.fixture(scope="module")
def media(media_dir: Path) -> dict[str, np.ndarray]:
    """Every test photo and 15 evenly spaced frames of each test video, by name."""
    images = {p.name: cv2.imread(str(p)) for p in sorted(media_dir.iterdir()) if p.suffix in (".jpg", ".png")}
    for name in VIDEOS:
        images |= video_frames(media_dir / name, FRAMES_PER_VIDEO)
    return images


@pytest.fixture(scope="module")
def mtcnn():
    return load_detector("mtcnn")


@pytest.fixture(scope="module")
def reference_boxes(media: dict[str, np.ndarray]) -> dict[str, list[Box]]:
    """The `mtcnn` package's boxes for every media image (computed once: TensorFlow is slow)."""
    pytest.importorskip("mtcnn", reason="the reference MTCNN needs fercam[train]")
    reference = load_detector("mtcnn-reference")
    detections = {name: reference.detect(image) for name, image in media.items()}
    return {name: [d.box for d in found if d.score >= FINAL_THRESHOLD] for name, found in detections.items()}


def matches(box: Box, others: list[Box]) -> bool:
    return any(box.iou(other) >= MATCH_IOU for other in others)


def test_fast_mtcnn_agrees_with_the_reference(mtcnn, media, reference_boxes):
    total = matched = extra = 0
    misses = []
    for name, image in media.items():
        expected, found = reference_boxes[name], [d.box for d in mtcnn.detect(image)]
        hits = sum(matches(box, found) for box in expected)
        surplus = sum(not matches(box, expected) for box in found)
        total, matched, extra = total + len(expected), matched + hits, extra + surplus
        if hits < len(expected) or surplus:
            misses.append(f"{name}: reference {expected} fast {found}")
    assert total >= 30, f"the test media should hold at least 30 reference faces, found {total}"
    assert matched >= 0.95 * total, f"matched {matched}/{total} reference boxes:\n" + "\n".join(misses)
    assert extra <= 0.05 * total, f"{extra} extra boxes for {total} reference boxes:\n" + "\n".join(misses)


def test_shipped_litert_models_reproduce_keras():
    pytest.importorskip("mtcnn", reason="the Keras reference networks need fercam[train]")
    from fercam.paths import model_file
    from fercam.training.convert_mtcnn import NETS, TOLERANCE, load_keras_net, max_difference

    for spec in NETS:
        model_bytes = model_file(f"mtcnn_{spec.name}.tflite").read_bytes()
        assert max_difference(load_keras_net(spec.name), model_bytes, spec.check_shapes) < TOLERANCE, spec.name


def test_two_people_give_two_faces_with_landmarks_inside(mtcnn, media):
    faces = mtcnn.detect(media["two_people.jpg"])
    assert len(faces) == 2
    left, right = sorted(faces, key=lambda d: d.box.x1)
    assert left.box.x2 < right.box.x1
    for face in faces:
        assert 0.8 < face.score <= 1.0 and len(face.landmarks) == 5
        assert all(face.box.x1 <= x <= face.box.x2 and face.box.y1 <= y <= face.box.y2 for x, y in face.landmarks)


def test_boxes_are_clipped_floats(mtcnn, media):
    image = media["fer_test.mp4#16"]  # the face touches the top edge
    height, width = image.shape[:2]
    for face in mtcnn.detect(image):
        assert all(isinstance(v, float) for v in (face.box.x1, face.box.y1, face.box.x2, face.box.y2))
        assert 0 <= face.box.x1 < face.box.x2 <= width and 0 <= face.box.y1 < face.box.y2 <= height


@pytest.mark.parametrize("name", ["fer_justin.jpg", "two_people.jpg", "skimage_astronaut.jpg", "fr_obama.jpg"])
def test_yunet_finds_the_faces_mtcnn_finds(mtcnn, media, name):
    image = media[name]
    faces, found = mtcnn.detect(image), load_detector("yunet").detect(image)
    assert len(found) == len(faces) and all(isinstance(d, Detection) and 0 <= d.score <= 1 for d in found)
    assert all(matches(face.box, [d.box for d in found]) for face in faces)
    assert all(len(d.landmarks) == 5 for d in found)
    left_eye, right_eye = found[0].landmarks[:2]
    assert left_eye[0] < right_eye[0]  # the image's left eye first, as MTCNN orders them


def test_detect_near_refinds_faces_from_shifted_boxes(mtcnn, media):
    image = media["two_people.jpg"]
    faces = mtcnn.detect(image)
    boxes = [face.box for face in faces]
    shifted = [Box(b.x1 + 0.1 * b.width, b.y1 - 0.08 * b.height, b.x2 + 0.15 * b.width, b.y2) for b in boxes]
    found = mtcnn.detect_near(image, shifted)
    assert len(found) == len(faces)
    assert all(matches(face.box, [d.box for d in found]) for face in faces)
    assert mtcnn.detect_near(image, []) == []


def test_tiny_and_blank_images_have_no_faces(mtcnn):
    assert mtcnn.detect(np.zeros((8, 8, 3), np.uint8)) == []
    assert mtcnn.detect(np.full((240, 320, 3), 128, np.uint8)) == []


@pytest.mark.parametrize("name", ["mtcnn", "yunet"])
@pytest.mark.parametrize(
    "image",
    [
        np.zeros((64, 64, 3), np.float32),
        np.zeros((64, 64), np.uint8),
        np.zeros((64, 64, 4), np.uint8),
        np.zeros((0, 64, 3), np.uint8),
        [[0, 0, 0]],
    ],
    ids=["float32", "gray", "bgra", "empty", "list"],
)
def test_bad_input_is_a_value_error(name, image):
    with pytest.raises(ValueError, match="uint8 BGR image"):
        load_detector(name).detect(image)


def test_unknown_detector_lists_the_valid_names():
    with pytest.raises(ValueError) as error:
        load_detector("retinaface")
    assert all(name in str(error.value) for name in ("mtcnn", "mtcnn-reference", "yunet"))
    assert set(DETECTORS.names()) == {"mtcnn", "mtcnn-reference", "yunet"}


def test_reference_without_mtcnn_says_how_to_install(monkeypatch):
    from fercam.extras import INSTALL_HINT, MissingExtraError

    monkeypatch.setitem(sys.modules, "mtcnn", None)  # makes `import mtcnn` fail
    with pytest.raises(MissingExtraError, match="fercam\\[train\\]") as error:
        load_detector("mtcnn-reference")
    assert INSTALL_HINT in str(error.value)


def test_live_cadence_boxes_follow_the_face_as_full_detection_would(mtcnn, media_dir):
    """LIVE mode skips the detector for faces that did not move: its boxes must still be where MTCNN sees the face."""
    import cv2

    from fercam.cadence import Cadence
    from fercam.emotion import load_classifier
    from fercam.pipeline import FaceReader
    from fercam.types import Frame

    capture = cv2.VideoCapture(str(media_dir / "fer_woman2.mp4"))
    reader = FaceReader(load_detector("mtcnn"), load_classifier(views="alternating"), cadence=Cadence())
    overlaps, index = [], 0
    while (image := capture.read()[1]) is not None:
        if index % 3 == 0:  # 10 analyses a second
            faces = reader.read(Frame(image, index, index / 29.97)).faces
            truth = mtcnn.detect(image)
            overlaps.append(max((f.box.iou(t.box) for f in faces for t in truth), default=float(not truth)))
        index += 1
    assert len(overlaps) > 150 and np.mean(overlaps) > 0.9 and min(overlaps) > 0.75
