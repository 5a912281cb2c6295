"""How far each face's mouth is open, frame by frame: the signal that tells who speaks.

`MouthMeter.measure(image, faces) -> {face id: opening}` runs MediaPipe Face Mesh (Apache-2.0, LiteRT, about 2 ms
a face on one core) on a square crop around each face box and returns the mouth's outer height (upper lip top,
point 0, to lower lip bottom, point 17) over the distance between the outer eye corners (33 and 263), so the
value does not change with the face's size or distance: about 0.2 for a closed mouth, rising by 0.05 to 0.2
as the jaw drops. The outer height followed the voice better than the inner-lip gap (13 to 14), which the
mesh often leaves at 0 for a half-open mouth (docs/speaking.md). A face the mesh cannot place (turned away,
covered, a bad box) gets NaN, which the attribution treats as "not seen".

`MouthMotion` is the cheaper signal it was measured against (docs/speaking.md): the mean change of the mouth
region between frames. It needs no model, but a nodding or turning head moves it as much as talking does.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import cv2
import numpy as np

from fercam.litert import interpreter
from fercam.paths import model_file
from fercam.types import Box

MESH_MODEL = "face_landmark.tflite"
MESH_SIZE = 192  # the model's square RGB input
MESH_MARGIN = 1.5  # crop side / the face box's longer side: the margin MediaPipe gives its face crops
MESH_MIN_LOGIT = 0.0  # the mesh's face-presence logit: under 0 (p < 0.5) there is no face in the crop
UPPER_LIP, LOWER_LIP, EYE_OUTER_RIGHT, EYE_OUTER_LEFT = 0, 17, 33, 263  # outer lip points, outer eye corners


def square_crop(image: np.ndarray, box: Box, margin: float, size: int) -> np.ndarray:
    """A `size` x `size` crop centred on `box`, its side `margin` x the box's longer side (outside: black)."""
    (cx, cy), side = box.center, margin * max(box.width, box.height, 1.0)
    scale = side / size
    matrix = np.array([[scale, 0, cx - side / 2], [0, scale, cy - side / 2]], np.float32)
    return cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)


# The mesh's mouth opening moves by about a tenth when its crop shifts by 4% of the face (measured: 0.239 against
# 0.264 on a still face), as much as a syllable; so a face's crop is held until its box moves or resizes by more
# than this share of its size, and a tracker's box that wavers by a few pixels does not make a still mouth talk.
STEADY = 0.1


def steady(held: Box | None, box: Box) -> Box:
    """`held` while `box` stays within `STEADY` of it, else `box`."""
    if held is None:
        return box
    size = max(held.width, held.height, 1.0)
    (hx, hy), (x, y) = held.center, box.center
    moved = max(abs(hx - x), abs(hy - y), abs(held.width - box.width), abs(held.height - box.height))
    return held if moved <= STEADY * size else box


class SteadyCrops:
    """Each face's crop box, held still while the face's box wavers (`steady`); `hold` is called with every
    measured frame's boxes, and a face no longer given is forgotten."""

    def __init__(self) -> None:
        self._held: dict[int, Box] = {}

    def hold(self, boxes: Mapping[int, Box]) -> dict[int, Box]:
        self._held = {face_id: steady(self._held.get(face_id), box) for face_id, box in boxes.items()}
        return self._held


class MouthMeter:
    """`measure(bgr_image, {face id: box}) -> {face id: mouth opening}` (NaN where the mesh finds no face).

    Thread-safe (a LiteRT interpreter is not, so each run holds a lock); faces are run one by one, which
    on one thread is as fast as a batch for this model.
    """

    def __init__(self, *, num_threads: int = 1) -> None:
        self._mesh = interpreter(model_file(MESH_MODEL), num_threads)
        self._input = self._mesh.get_input_details()[0]["index"]
        outputs = {int(np.prod(d["shape"])): d["index"] for d in self._mesh.get_output_details()}
        self._points, self._presence = outputs[468 * 3], outputs[1]
        self._lock = threading.Lock()

    def measure(self, image: np.ndarray, faces: Mapping[int, Box]) -> dict[int, float]:
        return {face_id: self._opening(image, box) for face_id, box in faces.items()}

    def _opening(self, image: np.ndarray, box: Box) -> float:
        crop = square_crop(image, box, MESH_MARGIN, MESH_SIZE)
        batch = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)[None].astype(np.float32) / 255.0
        with self._lock:
            self._mesh.set_tensor(self._input, batch)
            self._mesh.invoke()
            presence = float(self._mesh.get_tensor(self._presence).reshape(-1)[0])
            points = self._mesh.get_tensor(self._points).reshape(468, 3)[:, :2]
        eyes = float(np.linalg.norm(points[EYE_OUTER_RIGHT] - points[EYE_OUTER_LEFT]))
        if presence < MESH_MIN_LOGIT or eyes < 1.0:
            return float("nan")
        return float(np.linalg.norm(points[UPPER_LIP] - points[LOWER_LIP])) / eyes


MOTION_PATCH = (32, 16)  # width, height the mouth region is resized to: the same pixels whatever the face's size


class MouthMotion:
    """`measure(bgr_image, {face id: box}) -> {face id: mouth-region change since the face's last frame}`.

    The mouth region is the box's lower third, middle half, in grey; the change is the mean absolute
    difference (0..255) from the same face's previous patch, NaN for a face seen for the first time.
    """

    def __init__(self) -> None:
        self._last: dict[int, np.ndarray] = {}

    def measure(self, image: np.ndarray, faces: Mapping[int, Box]) -> dict[int, float]:
        out, patches = {}, {}
        for face_id, box in faces.items():
            x1, x2 = box.x1 + box.width / 4, box.x2 - box.width / 4
            y1, y2 = box.y1 + box.height * 2 / 3, box.y2
            region = image[max(0, round(y1)) : max(0, round(y2)), max(0, round(x1)) : max(0, round(x2))]
            if region.size == 0:
                out[face_id] = float("nan")
                continue
            patch = cv2.resize(cv2.cvtColor(region, cv2.COLOR_BGR2GRAY), MOTION_PATCH, interpolation=cv2.INTER_AREA)
            patches[face_id] = patch.astype(np.float32)
            last = self._last.get(face_id)
            out[face_id] = float(np.mean(np.abs(patches[face_id] - last))) if last is not None else float("nan")
        self._last = patches
        return out
