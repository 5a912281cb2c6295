"""LIVE mode's economy: spend CPU on a face only when it moved, is new, or is due for a fresh reading.

A 1/8-scale grey thumbnail of each analysed frame, compared with the previous one, tells which
tracked faces moved and whether anything changed elsewhere (a face coming in). Still faces keep
their boxes without a detector call; every face gets a fresh emotion at least `refresh_s` apart;
a full scan runs on change elsewhere in the picture, and every `rescan_s` in any case.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from fercam.types import Box


@dataclass(frozen=True)
class Cadence:
    rescan_s: float = 3.0  # a full scan at least this often, whatever the motion says
    # Each face's emotion is read again once this old. Analysed frames are 33 or 67 ms apart (a 30 fps
    # camera, 22 analyses a second): every first or second analysis, 12 to 14 times a second per face;
    # a longer wait would sometimes skip two and fall under 10.
    refresh_s: float = 0.066
    motion: float = 8.0  # mean grey-level change (0-255) of a thumbnail block that counts as movement
    thumb_width: int = 160  # 8 x 8-pixel blocks of the thumbnail are the unit of "where"


class MotionMeter:
    """Where the picture changed since the previous call, in 8x8-pixel blocks of a small grey thumbnail."""

    BLOCK = 8

    def __init__(self, cadence: Cadence) -> None:
        self.cadence = cadence
        self._previous: np.ndarray | None = None
        self._blocks: np.ndarray | None = None  # mean change per block; None: nothing to compare with
        self._scale = 1.0

    def update(self, image: np.ndarray) -> None:
        height, width = image.shape[:2]
        self._scale = self.cadence.thumb_width / width
        size = (self.cadence.thumb_width, max(self.BLOCK, round(height * self._scale)))
        # Bilinear reads 4 pixels per thumbnail pixel (a 720p frame: 0.1 ms, area averaging: 1.4 ms);
        # the aliasing it lets through is averaged away over each 8x8 block.
        grey = cv2.cvtColor(cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), cv2.COLOR_BGR2GRAY)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            self._blocks = None
            return
        rows, cols = grey.shape[0] // self.BLOCK, grey.shape[1] // self.BLOCK
        change = cv2.absdiff(grey, previous)[: rows * self.BLOCK, : cols * self.BLOCK].astype(np.float32)
        self._blocks = change.reshape(rows, self.BLOCK, cols, self.BLOCK).mean(axis=(1, 3))

    def _cells(self, box: Box, *, person: bool = False) -> tuple[slice, slice]:
        """The blocks a face box covers, or with `person` the region its head and body move in
        (a face-width either side, half a face above, three faces below)."""
        left, right, up, down = (1.0, 1.0, 0.5, 3.0) if person else (0.0, 0.0, 0.0, 0.0)
        scale = self._scale / self.BLOCK
        x1, x2 = int((box.x1 - left * box.width) * scale), int(np.ceil((box.x2 + right * box.width) * scale))
        y1, y2 = int((box.y1 - up * box.height) * scale), int(np.ceil((box.y2 + down * box.height) * scale))
        return slice(max(0, y1), max(0, y2)), slice(max(0, x1), max(0, x2))

    def moved(self, box: Box) -> bool:
        """Whether the face in `box` moved (always True before there is a previous frame). The mean change
        over the box, not its largest block: a talking mouth changes a few blocks, a moving head all of them."""
        if self._blocks is None:
            return True
        cells = self._blocks[self._cells(box)]
        return cells.size == 0 or float(cells.mean()) > self.cadence.motion

    def moved_outside(self, boxes: Sequence[Box]) -> bool:
        """Whether anything moved away from the people whose faces are `boxes` (a face coming in, a cut)."""
        if self._blocks is None:
            return True
        free = np.ones(self._blocks.shape, bool)
        for box in boxes:
            free[self._cells(box, person=True)] = False
        return bool(np.any(self._blocks[free] > self.cadence.motion))
