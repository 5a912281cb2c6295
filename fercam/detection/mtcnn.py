"""MTCNN face detection on LiteRT: the `mtcnn` package's three networks, without TensorFlow.

The arithmetic (pyramid, proposal decoding, regression, squaring, the reference's NMS variant, crop
sampling) follows `mtcnn` 1.0 so that boxes agree with `mtcnn.MTCNN`. It is faster because the pyramid
skips faces below a fraction of the frame, RNet and ONet see all candidates in few invokes, and
interpreters stay allocated per input shape.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
from ai_edge_litert.interpreter import Interpreter

from fercam.detection.common import check_image
from fercam.detection.mtcnn_ops import area_levels, crop_patches, decode_proposals, pyramid_scales
from fercam.litert import ModelError, quiet_native_stderr
from fercam.paths import model_file
from fercam.types import Box, Detection

log = logging.getLogger(__name__)

MAX_BATCH = 32  # RNet/ONet patches per invoke: larger batches were slower per patch (cache misses)
MAX_SHAPES = 32  # interpreters kept per network (frame sizes x pyramid levels, batch sizes)
_NMS_BLOCK = 1024  # boxes compared at once in `suppress`, to bound its memory
# Where a candidate window is tried around a tracked face in `detect_near` (relative to its size).
NEAR_SHIFTS = (-0.15, 0.0, 0.15)
NEAR_SIZES = (0.9, 1.15)


class _Network:
    """One network as LiteRT interpreters, one per input shape, so a frame never re-allocates."""

    def __init__(self, path: Path, num_threads: int) -> None:
        if not path.is_file():
            raise ModelError(f"{path} is missing; build it with `python -m fercam.training.convert_mtcnn`")
        self._content, self._name, self._num_threads = path.read_bytes(), path.name, num_threads
        try:  # a damaged file fails here, with its name, not at the first frame
            with quiet_native_stderr():
                Interpreter(model_content=self._content, num_threads=num_threads)
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{path}: not a LiteRT model ({str(exc).splitlines()[0]})") from exc
        self._by_shape: dict[tuple[int, ...], tuple[Interpreter, int, list[int]]] = {}

    def _interpreter(self, shape: tuple[int, ...]) -> tuple[Interpreter, int, list[int]]:
        entry = self._by_shape.get(shape)
        if entry is None:
            if len(self._by_shape) >= MAX_SHAPES:
                self._by_shape.pop(next(iter(self._by_shape)))  # forget the oldest shape
            with quiet_native_stderr():
                interpreter = Interpreter(model_content=self._content, num_threads=self._num_threads)
            index = interpreter.get_input_details()[0]["index"]
            interpreter.resize_tensor_input(index, shape)
            interpreter.allocate_tensors()
            # Output names end in :0, :1, ... in the Keras model's output order.
            outputs = sorted(interpreter.get_output_details(), key=lambda d: d["name"])
            entry = self._by_shape[shape] = (interpreter, index, [d["index"] for d in outputs])
            log.debug("%s: interpreter allocated for input %s", self._name, shape)
        return entry

    def __call__(self, batch: np.ndarray) -> list[np.ndarray]:
        interpreter, index, outputs = self._interpreter(batch.shape)
        interpreter.set_tensor(index, batch)
        interpreter.invoke()
        return [interpreter.get_tensor(i) for i in outputs]

    def batched(self, patches: np.ndarray) -> list[np.ndarray]:
        """All patches in few invokes, padded to one of a few batch sizes so that few shapes are ever allocated."""
        parts = []
        for start in range(0, len(patches), MAX_BATCH):
            chunk = patches[start : start + MAX_BATCH]
            padded = np.zeros((_batch_size(len(chunk)), *chunk.shape[1:]), np.float32)
            padded[: len(chunk)] = chunk
            parts.append([out[: len(chunk)] for out in self(padded)])
        return [np.concatenate(outs) for outs in zip(*parts, strict=True)]


def _batch_size(count: int) -> int:
    """1, 2, 4, 8, 16, then multiples of 8: little padding, at most 7 shapes per network."""
    return 1 << (count - 1).bit_length() if count <= 16 else -(-count // 8) * 8


def overlap(a: np.ndarray, b: np.ndarray, method: str = "union") -> np.ndarray:
    """Pairwise overlap (n, m) of boxes (x1, y1, x2, y2): intersection over union, or over the smaller area."""
    iw = np.maximum(0.0, np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]))
    ih = np.maximum(0.0, np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]))
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    if method == "union":
        denominator = area_a[:, None] + area_b[None, :] - inter
    else:
        denominator = np.minimum(area_a[:, None], area_b[None, :])
    with np.errstate(divide="ignore", invalid="ignore"):
        return inter / denominator


def suppress(boxes: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices of the boxes (x1, y1, x2, y2, score) that survive NMS, best first.

    As in the reference, a box is dropped when ANY better box overlaps it above `threshold`, even
    one that was itself dropped (stricter than greedy NMS, and what the boxes must match)."""
    order = np.argsort(-boxes[:, 4], kind="stable")
    ranked = boxes[order, :4]
    keep = np.ones(len(order), bool)
    for start in range(0, len(order), _NMS_BLOCK):
        stop = min(start + _NMS_BLOCK, len(order))
        over = overlap(ranked[:stop], ranked[start:stop], method) > threshold
        better = np.arange(stop)[:, None] < np.arange(start, stop)[None, :]
        keep[start:stop] = ~(over & better).any(axis=0)
    return order[keep]


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (the longer side wins), as the next network expects."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] += (w - side) / 2
    out[:, 1] += (h - side) / 2
    out[:, 2:4] = out[:, 0:2] + side[:, None]
    return out


def regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Apply a network's box offsets, which are relative to the (inclusive-pixel) box size."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1
    out[:, :4] += offsets * np.stack([w, h, w, h], axis=1)
    return out


def place_landmarks(boxes: np.ndarray, marks: np.ndarray) -> np.ndarray:
    """ONet's box-relative landmarks (x1..x5, y1..y5) -> image coordinates (x1..x5, y1..y5)."""
    w, h = boxes[:, 2:3] - boxes[:, 0:1] + 1, boxes[:, 3:4] - boxes[:, 1:2] + 1
    return np.concatenate([w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=1)


def near_candidates(boxes: np.ndarray) -> np.ndarray:
    """Square windows (x1, y1, x2, y2, 1) shifted and resized around each tracked box, for RNet to judge."""
    centre = (boxes[:, 0:2] + boxes[:, 2:4]) / 2
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    windows = []
    for size, dy, dx in itertools.product(NEAR_SIZES, NEAR_SHIFTS, NEAR_SHIFTS):
        corner = centre + side[:, None] * np.array([dx - size / 2, dy - size / 2])
        windows.append(np.column_stack([corner, corner + side[:, None] * size, np.ones(len(boxes))]))
    return np.concatenate(windows)


class MTCNNLite:
    """The three-stage MTCNN detector on LiteRT; `detect` scans a frame, `detect_near` re-finds tracked faces.

    min_face_size (pixels) and min_face_ratio (of the frame's shorter side) bound the smallest face
    searched for; the larger wins. scan_size, if set, shrinks the frame's shorter side to it first.
    """

    def __init__(
        self,
        *,
        num_threads: int = 2,
        min_face_size: float = 20.0,
        min_face_ratio: float = 0.07,
        scale_factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
        scan_size: int | None = 4320,  # an 8K frame's shorter side: a larger photo lost faces (12000 px: 1 of 2)
    ) -> None:
        self._pnet, self._rnet, self._onet = (
            _Network(model_file(f"mtcnn_{name}.tflite"), num_threads) for name in ("pnet", "rnet", "onet")
        )
        self.min_face_size, self.min_face_ratio = min_face_size, min_face_ratio
        self.scale_factor, self.thresholds, self.scan_size = scale_factor, thresholds, scan_size
        self._lock = threading.Lock()  # LiteRT interpreters are not thread-safe

    def detect(self, image: np.ndarray) -> list[Detection]:
        """All faces in a uint8 BGR frame, best first."""
        bgr, factor = self._prepare(image)
        with self._lock:
            boxes = self._refine(bgr, self._propose(bgr))
            boxes, marks = self._output(bgr, boxes)
        return _detections(boxes, marks, factor, image.shape)

    def detect_near(self, image: np.ndarray, boxes: Sequence[Box]) -> list[Detection]:
        """Faces close to already-known boxes: RNet and ONet only, a fraction of a full scan's cost."""
        bgr, factor = self._prepare(image)
        if len(boxes) == 0:
            return []
        known = np.array([[b.x1, b.y1, b.x2, b.y2] for b in boxes], np.float64) * factor
        with self._lock:
            found = self._refine(bgr, near_candidates(known))
            found, marks = self._output(bgr, found)
        return _detections(found, marks, factor, image.shape)

    def _prepare(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """Checked BGR frame, shrunk to `scan_size` if asked, and the factor it was shrunk by."""
        check_image(image)
        factor = 1.0
        if self.scan_size and min(image.shape[:2]) > self.scan_size:
            factor = self.scan_size / min(image.shape[:2])
            size = (round(image.shape[1] * factor), round(image.shape[0] * factor))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        return image, factor

    def _propose(self, bgr: np.ndarray) -> np.ndarray:
        """PNet over the pyramid: NMS per level, then across levels, then squared."""
        height, width = bgr.shape[:2]
        min_face = max(self.min_face_size, self.min_face_ratio * min(height, width))
        scales = pyramid_scales(height, width, self.min_face_size, self.scale_factor, min_face)
        sizes = [(int(width * scale), int(height * scale)) for scale in scales]
        levels = [np.empty((0, 5))]
        for scale, level in zip(scales, area_levels(bgr, sizes), strict=True):
            offsets, score = self._pnet(level[None])
            boxes = decode_proposals(offsets[0], score[0, ..., 1], scale, self.thresholds[0])
            levels.append(boxes[suppress(boxes, 0.5)])
        boxes = np.concatenate(levels)
        return square(boxes[suppress(boxes, 0.7)])

    def _refine(self, bgr: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """RNet on every proposal in one batch: rescored, regressed, thresholded, NMS, squared."""
        if len(boxes) == 0:
            return boxes
        offsets, score = self._rnet.batched(crop_patches(bgr, boxes, 24))
        boxes = regress(np.column_stack([boxes[:, :4], score[:, 1]]), offsets)
        boxes = boxes[boxes[:, 4] > self.thresholds[1]]
        return square(boxes[suppress(boxes, 0.7)])

    def _output(self, bgr: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ONet on every refined box in one batch: final boxes, scores and five landmarks."""
        if len(boxes) == 0:
            return boxes, np.empty((0, 10))
        offsets, marks, score = self._onet.batched(crop_patches(bgr, boxes, 48))
        marks = place_landmarks(boxes, marks)
        boxes = regress(np.column_stack([boxes[:, :4], score[:, 1]]), offsets)
        passed = boxes[:, 4] > self.thresholds[2]
        boxes, marks = boxes[passed], marks[passed]
        keep = suppress(boxes, 0.7, "min")
        return boxes[keep], marks[keep]


def _detections(boxes: np.ndarray, marks: np.ndarray, factor: float, shape: tuple[int, ...]) -> list[Detection]:
    """Network boxes in (possibly shrunk) scan pixels -> Detections in frame pixels, clipped to the frame."""
    height, width = shape[:2]
    clipped = np.clip(boxes[:, :4] / factor, 0, [width, height, width, height])
    scores = np.clip(boxes[:, 4], 0.0, 1.0)
    found = []
    for (x1, y1, x2, y2), score, mark in zip(clipped.tolist(), scores.tolist(), marks / factor, strict=True):
        if x2 > x1 and y2 > y1:
            points = tuple(zip(mark[:5].tolist(), mark[5:].tolist(), strict=True))
            found.append(Detection(Box(x1, y1, x2, y2), score, points))
    return found
