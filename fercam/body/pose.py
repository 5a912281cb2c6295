"""BlazePose (MediaPipe, Apache-2.0) on LiteRT: every person's 33 body points in image pixels.

Two models: a detector that finds a person by the face and predicts the hip centre and the body's
size and tilt, then a landmark model on an upright square crop around the body. Both run with
`ai-edge-litert` alone; the anchors and crop geometry follow MediaPipe's pose graphs.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

from fercam.litert import interpreter
from fercam.paths import model_file
from fercam.types import Box

DETECTOR_MODEL = "pose_detection.tflite"
LANDMARK_MODEL = "pose_landmark_lite.tflite"
DETECT_SIZE, CROP_SIZE = 224, 256
BODY_POINTS = 33  # MediaPipe's order: 0 nose, 7/8 ears, 11/12 shoulders, 15/16 wrists, 23/24 hips ...
CROP_SCALE = 2.5  # crop side / (hip centre to the detector's size point), as MediaPipe's pose graph


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-np.clip(x, -80, 80)))


def ssd_anchors() -> np.ndarray:
    """(2254, 2) anchor centres in [0, 1]: strides 8, 16, 32 with 2, 2 and 6 anchors a cell."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        cells = DETECT_SIZE // stride
        grid = (np.stack(np.meshgrid(np.arange(cells), np.arange(cells)), -1).reshape(-1, 2) + 0.5) / cells
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass(frozen=True)
class Pose:
    """One person: `xy` (33, 2) image pixels, `z` (33,) depth in pixels (smaller = nearer the camera),
    `visible` (33,) how likely each point is seen (not hidden), `present` (33,) how likely it lies
    inside the picture (0 for points the model placed outside it), and the detector's face box."""

    xy: np.ndarray
    z: np.ndarray
    visible: np.ndarray
    present: np.ndarray
    score: float
    face: Box


class _Net:
    """A LiteRT model with one input and several outputs, told apart by their shapes; a lock per run."""

    def __init__(self, name: str, num_threads: int) -> None:
        self._interpreter = interpreter(model_file(name), num_threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._outputs = {tuple(d["shape"][1:]): d["index"] for d in self._interpreter.get_output_details()}
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray, *shapes: tuple[int, ...]) -> list[np.ndarray]:
        with self._lock:
            self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, np.float32))
            self._interpreter.invoke()
            return [self._interpreter.get_tensor(self._outputs[s])[0].copy() for s in shapes]


class BlazePose:
    """`estimate(bgr_image)` -> every person's Pose (at most `max_people`, best first)."""

    def __init__(self, *, num_threads: int = 2, min_score: float = 0.5, max_people: int = 4) -> None:
        self.min_score, self.max_people = min_score, max_people
        self._detector = _Net(DETECTOR_MODEL, num_threads)
        self._landmarks = _Net(LANDMARK_MODEL, num_threads)
        self._anchors = ssd_anchors()

    def estimate(self, bgr_image: np.ndarray) -> list[Pose]:
        rgb = cv2.cvtColor(bgr_image, cv2.COLOR_BGR2RGB)
        poses = []
        for face, hip, size_point, score in self._detect(rgb):
            pose = self._landmark(rgb, face, hip, size_point, score)
            if pose is not None:
                poses.append(pose)
        return poses

    def _detect(self, rgb: np.ndarray) -> list[tuple[Box, np.ndarray, np.ndarray, float]]:
        """Faces with the hip centre and size point, in pixels; the image is padded to a square below/right."""
        side = max(rgb.shape[:2])
        square = np.zeros((side, side, 3), np.uint8)
        square[: rgb.shape[0], : rgb.shape[1]] = rgb
        batch = cv2.resize(square, (DETECT_SIZE, DETECT_SIZE), interpolation=cv2.INTER_AREA)[None] / 127.5 - 1
        raw, logits = self._detector.run(batch, (2254, 12), (2254, 1))
        scores = _sigmoid(logits[:, 0])
        keep = np.flatnonzero(scores >= self.min_score)
        anchors = self._anchors[keep]
        centres = (raw[keep, :2] / DETECT_SIZE + anchors) * side
        sizes = raw[keep, 2:4] / DETECT_SIZE * side
        points = (raw[keep, 4:12] / DETECT_SIZE + np.tile(anchors, 4)) * side
        boxes = [Box(*(c - s / 2), *(c + s / 2)) for c, s in zip(centres, sizes)]
        found = []
        for i in _nms(boxes, scores[keep], 0.3)[: self.max_people]:
            found.append((boxes[i], points[i, 0:2], points[i, 2:4], float(scores[keep][i])))
        return found

    def _landmark(
        self, rgb: np.ndarray, face: Box, hip: np.ndarray, size_point: np.ndarray, score: float
    ) -> Pose | None:
        """The body points from an upright square crop around the hips; None if the model sees no body there."""
        up = size_point - hip
        length = float(np.hypot(*up))
        if length < 1:
            return None
        ux, uy = up / length  # the body's "up" in the image; the crop turns it to (0, -1)
        scale = CROP_SCALE * length / CROP_SIZE
        to_image = np.array([[-uy, -ux], [ux, -uy]]) * scale
        matrix = np.hstack([to_image, (hip - to_image @ [CROP_SIZE / 2, CROP_SIZE / 2])[:, None]])
        crop = cv2.warpAffine(
            rgb, matrix, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderValue=0
        )
        raw, flag = self._landmarks.run(crop[None] / 255.0, (195,), (1,))
        if flag[0] < self.min_score:  # the detector's face had no body the landmark model could place
            return None
        points = raw.reshape(39, 5)[:BODY_POINTS]
        xy = points[:, :2] @ to_image.T + matrix[:, 2]
        height, width = rgb.shape[:2]
        inside = (xy[:, 0] >= 0) & (xy[:, 0] < width) & (xy[:, 1] >= 0) & (xy[:, 1] < height)
        return Pose(
            xy=xy.astype(np.float32),
            z=(points[:, 2] * scale).astype(np.float32),
            visible=_sigmoid(points[:, 3]).astype(np.float32),
            present=(_sigmoid(points[:, 4]) * inside).astype(np.float32),
            score=float(flag[0]) * score,
            face=face,
        )


def _nms(boxes: list[Box], scores: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression: indices of the kept boxes, best first."""
    kept: list[int] = []
    for i in np.argsort(-scores):
        if all(boxes[i].iou(boxes[k]) < iou for k in kept):
            kept.append(int(i))
    return kept
