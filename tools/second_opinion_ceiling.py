"""How much a cheaper second opinion could keep: the zoo model reading less of each aligned face, nested estimate.

    PYTHONPATH=. python tools/second_opinion_ceiling.py [--mode none grey down56 grey56 down64]

A network smaller than the zoo model, reading a smaller face (56 or 64 px instead of 112) or a grey one, can at best
copy what the zoo model says given the same information. So each mode gives the zoo model the aligned face scaled
down and up again, or made grey, re-reads every development face (both detectors, both views, as `fit_combiner`'s
cache holds them) and runs `fit_combiner`'s nested estimate on those outputs: the ceiling of a student that reads
that much. `none` reproduces the shipped figures. About a minute a mode on a 2-core Xeon, `fit_combiner`'s cache built
(`runs/wild_cache`). models/README.md, "The second opinion on less of the face", has the figures.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from fercam.detection import load_detector
from fercam.second_opinion import ALIGNED_SIZE, AlignedEmotionModel, aligned_faces
from fercam.training.combiner_rule import load_faces
from fercam.training.nested import by_set, nested
from fercam.training.wild import _largest, read_photo_set

FOLDERS = [Path("../shared/data/wild_faces_dev"), Path("../shared/data/sfew_train")]


def less_of(face: np.ndarray, mode: str) -> np.ndarray:
    """The 112 px aligned face with less in it: `grey`, and/or scaled down to N px and up again (`downN`, `greyN`);
    `none`: as it is."""
    if mode == "none":
        return face
    if mode.startswith("grey"):
        face = cv2.cvtColor(cv2.cvtColor(face, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    size = mode.removeprefix("grey").removeprefix("down")
    if size:
        small = cv2.resize(face, (int(size), int(size)), interpolation=cv2.INTER_AREA)
        face = cv2.resize(small, (ALIGNED_SIZE, ALIGNED_SIZE), interpolation=cv2.INTER_LINEAR)
    return face


def aligned_by_detector() -> dict:
    """{(detector, picture index): the largest face aligned}, in the order of `load_faces`."""
    paths = [photos.path(name) for photos in map(read_photo_set, FOLDERS) for name in photos.files]
    detectors = {name: load_detector(name) for name in ("mtcnn", "yunet")}
    found = {}
    for i, path in enumerate(paths):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        for name, detector in detectors.items():
            face = _largest(detector.detect(image))
            aligned = aligned_faces(image, [face])[0] if face is not None else None
            if aligned is not None:
                found[name, i] = aligned
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", nargs="+", default=["none", "grey", "down56", "grey56", "down64"])
    parser.add_argument("--cache", type=Path, default=Path("runs/wild_cache"), help="fit_combiner's per-face cache")
    args = parser.parse_args()
    faces = load_faces(FOLDERS, args.cache, log=lambda *_: None)
    found, zoo = aligned_by_detector(), AlignedEmotionModel()
    for mode in args.mode:
        started = time.monotonic()
        outputs = {key: value.copy() for key, value in faces.outputs.items()}
        for (detector, i), aligned in found.items():
            face = less_of(aligned, mode)
            probs, features = zoo.read_aligned([face, face[:, ::-1]])
            outputs[f"{detector}_second"][i], outputs[f"{detector}_second_flip"][i] = probs
            outputs[f"{detector}_second_feat"][i] = features[0]
        changed = replace(faces, outputs=outputs)
        estimate = nested(changed, log=lambda *_: None)
        scores = by_set(changed, estimate["probs"], estimate["found"])
        row = ", ".join(f"{name} {s['accuracy']:.1%} / {s['balanced_accuracy']:.1%}" for name, s in scores.items())
        print(f"{mode}: {row} ({time.monotonic() - started:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
