"""MTCNN's image arithmetic: the pyramid, exact area resizing, patch sampling and the proposal decoding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import cv2
import numpy as np

CELL, STRIDE = 12, 2  # PNet sees 12x12 windows every 2 pixels of a pyramid level


def pyramid_scales(height: int, width: int, min_face_size: float, factor: float, min_face: float) -> list[float]:
    """The reference's pyramid (a `min_face_size` face at 12 px, then x `factor` until a side is 12 px),
    less the levels that only find faces smaller than `min_face`: same levels, so same boxes."""
    scale, scales = CELL / min_face_size, []
    while min(height, width) * scale >= CELL:
        if scale * min_face <= CELL * (1 + 1e-9):
            scales.append(scale)
        scale *= factor
    return scales


def normalize(bgr: np.ndarray) -> np.ndarray:
    """BGR values 0..255 -> RGB in the float range the networks were trained on.

    The channel swap happens here, on the small pyramid levels and patches, not on the whole frame."""
    return (bgr[..., ::-1].astype(np.float32) - 127.5) * (1 / 128)


def area_levels(bgr: np.ndarray, sizes: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """The frame resized to each (width, height) by exact area averaging (as TF's AREA resize), normalized.

    cv2's INTER_AREA took ~7 ms a level at such ratios on 720p; here one integral image serves all levels
    (the integral of a pixel grid is bilinear inside each pixel, so interpolating it is exact)."""
    integral = cv2.integral(bgr, sdepth=cv2.CV_32S)  # exact up to 8,400,000 pixels, half the memory of float64
    height, width = bgr.shape[:2]
    for out_width, out_height in sizes:
        grid = _integral_at(_integral_at(integral, out_height, height, 0), out_width, width, 1)
        sums = grid[1:, 1:] - grid[:-1, 1:] - grid[1:, :-1] + grid[:-1, :-1]
        yield normalize(sums * (out_height * out_width / (height * width)))


def _integral_at(table: np.ndarray, count: int, length: int, axis: int) -> np.ndarray:
    """`table` interpolated along `axis` at the count + 1 edges splitting `length` pixels evenly."""
    edges = np.arange(count + 1) * (length / count)
    low = np.minimum(edges.astype(np.intp), length - 1)
    shape = [1, 1, 1]
    shape[axis] = -1
    frac = (edges - low).reshape(shape)
    below = np.take(table, low, axis=axis)
    return below + frac * (np.take(table, low + 1, axis=axis) - below)


def decode_proposals(offsets: np.ndarray, score: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """PNet maps of one pyramid level -> boxes (x1, y1, x2, y2, score) in frame pixels."""
    ys, xs = np.nonzero(score > threshold)
    # The reference's window runs from pixel 2x+1 to 2x+12, so its size is 11 (kept, for equal boxes).
    windows = np.stack([xs, ys, xs, ys], axis=1) * STRIDE + np.array([1, 1, CELL, CELL])
    boxes = (windows + offsets[ys, xs] * (CELL - 1)) / scale
    return np.column_stack([boxes, score[ys, xs]])


def crop_patches(bgr: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Normalized (n, size, size, 3) crops sampled where tf.image.crop_and_resize samples (bilinear).

    One cv2.remap call does all boxes: 6x faster than numpy gathers, within ~1 grey level of TF."""
    height, width = bgr.shape[:2]
    n, steps = len(boxes), np.arange(size) / (size - 1)
    ys = (boxes[:, 1:2] + steps * (boxes[:, 3:4] - boxes[:, 1:2])) * ((height - 1) / height)
    xs = (boxes[:, 0:1] + steps * (boxes[:, 2:3] - boxes[:, 0:1])) * ((width - 1) / width)
    map_x = np.broadcast_to(xs[:, None, :], (n, size, size)).reshape(n * size, size).astype(np.float32)
    map_y = np.broadcast_to(ys[:, :, None], (n, size, size)).reshape(n * size, size).astype(np.float32)
    pixels = cv2.remap(bgr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    patches = normalize(pixels).reshape(n, size, size, 3)
    inside = ((ys >= 0) & (ys <= height - 1))[:, :, None] & ((xs >= 0) & (xs <= width - 1))[:, None, :]
    patches[~inside] = 0.0  # crop_and_resize's value for samples outside the image
    return patches
