"""The face crop our emotion model reads: the part of the picture both readings start from.

Here, below the pipeline and the combined reading alike, so that neither has to import the other for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fercam.types import Box

CROP_SCALE = 1.1  # FER2013 faces show a little forehead and chin beyond the detector's box


def face_crops(image: np.ndarray, boxes: Sequence[Box]) -> list[np.ndarray]:
    """Square crops centred on each box, padded by edge replication at the image border, in grey.

    `image` is grey or BGR; a BGR image is turned grey crop by crop, not as a whole frame."""
    crops = []
    for box in boxes:
        (cx, cy), side = box.center, max(box.width, box.height) * CROP_SCALE
        x1, y1 = round(cx - side / 2), round(cy - side / 2)
        x2, y2 = x1 + max(1, round(side)), y1 + max(1, round(side))
        inside = image[max(0, y1) : max(0, y2), max(0, x1) : max(0, x2)]
        top, left = max(0, -y1), max(0, -x1)
        bottom, right = (y2 - y1) - top - inside.shape[0], (x2 - x1) - left - inside.shape[1]
        crop = (
            cv2.copyMakeBorder(inside, top, bottom, left, right, cv2.BORDER_REPLICATE)
            if top or left or bottom or right
            else inside
        )
        crops.append(cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else np.ascontiguousarray(crop))
    return crops
