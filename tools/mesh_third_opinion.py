"""Does the 468-point face mesh help the combined reading as a third, lighting-independent opinion? (#41)

For every picture of the development folders, the largest MTCNN (and YuNet) face is read by MediaPipe Face Mesh on
the crop `fercam.speaking.lips` uses; its points, aligned to their mean shape by a similarity transform, enter the
rule as one more feature block (whitened principal components, as the zoo features do). Then either the shipped
recipe scored on the shared folds with and without the block (quick), or, with `--nested`, the whole nested
estimate with the mesh among the candidates (every choice inside, as `fit_combiner` runs it; about 5 minutes).

    PYTHONPATH=. python tools/mesh_third_opinion.py [--components 16] [--nested]

Needs the per-face cache `fit_combiner` builds (`runs/wild_cache`, made on first use). Findings: models/README.md.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import cv2
import numpy as np

import fercam.training.combiner_rule as rule
from fercam.detection import load_detector
from fercam.litert import interpreter
from fercam.paths import model_file
from fercam.second_opinion import softmax
from fercam.speaking.lips import MESH_MARGIN, MESH_MODEL, MESH_SIZE, square_crop
from fercam.training.nested import by_set, cross_validated, folds_of, nested
from fercam.training.wild import _largest, read_photo_set, scored

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
FOLDERS = [SHARED / "wild_faces_dev", SHARED / "sfew_train"]
WITH_MESH = "probabilities + zoo features + face mesh"


class MeshReader:
    """`read(bgr_image, box) -> (468, 3)`: the mesh's points on the crop `fercam.speaking.lips` gives it."""

    def __init__(self) -> None:
        self._net = interpreter(model_file(MESH_MODEL), 1)
        self._source = self._net.get_input_details()[0]["index"]
        self._points = {int(np.prod(d["shape"])): d["index"] for d in self._net.get_output_details()}[468 * 3]

    def read(self, image: np.ndarray, box) -> np.ndarray:
        crop = square_crop(image, box, MESH_MARGIN, MESH_SIZE)
        self._net.set_tensor(self._source, cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)[None].astype(np.float32) / 255)
        self._net.invoke()
        return self._net.get_tensor(self._points).reshape(468, 3).copy()


def mesh_points(folder: Path) -> dict:
    """Per picture and detector: the mesh's (468, 3) points on the largest face (zeros where none)."""
    mesh, photos, out = MeshReader(), read_photo_set(folder), {}
    for name, detector in (("mtcnn", load_detector("mtcnn")), ("yunet", load_detector("yunet"))):
        found = np.zeros((len(photos.files), 468, 3), np.float32)
        for i, file in enumerate(photos.files):
            image = cv2.imread(str(photos.path(file)), cv2.IMREAD_COLOR)
            face = _largest(detector.detect(image))
            if face is not None:
                found[i] = mesh.read(image, face.box)
        out[f"{name}_mesh"] = found
    return out


def aligned_shapes(points: np.ndarray, rounds: int = 3) -> np.ndarray:
    """(N, 468, 3) -> (N, 1404): centred, unit size, x-y rotated onto the mean shape (generalised Procrustes)."""
    p = points.astype(np.float64) - points.mean(1, keepdims=True)
    p /= np.sqrt((p[:, :, :2] ** 2).sum((1, 2)) / 468)[:, None, None] + 1e-9
    reference = p[:, :, :2].mean(0)
    for _ in range(rounds):
        for i in range(len(p)):
            u, _, vt = np.linalg.svd(p[i, :, :2].T @ reference)
            p[i, :, :2] = p[i, :, :2] @ (u @ vt)
        reference = p[:, :, :2].mean(0)
    return p.reshape(len(p), -1)


def faces_with_mesh(cache: Path) -> rule.Faces:
    """The development faces with the mesh's aligned shape as one more per-face output, "mesh" (`Faces.blocks`)."""
    faces = rule.load_faces(FOLDERS, cache, log=lambda *_: None)
    parts = [mesh_points(folder) for folder in FOLDERS]
    for name in ("mtcnn", "yunet"):
        faces.outputs[f"{name}_mesh"] = aligned_shapes(np.concatenate([p[f"{name}_mesh"] for p in parts]))
    return faces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--components", type=int, default=16, help="principal components of the mesh kept")
    parser.add_argument("--nested", action="store_true", help="the whole nested estimate with the mesh a candidate")
    parser.add_argument("--cache", default="runs/wild_cache")
    args = parser.parse_args()
    faces = faces_with_mesh(Path(args.cache))
    rule.PCA["mesh"] = args.components
    rule.INPUTS[WITH_MESH] = ("ours", "zoo", "zoo_features", "mesh")
    if args.nested:
        recipes = tuple(
            rule.Recipe(*r) for r in itertools.product(rule.INPUTS, (False, True), rule.L2_GRID, rule.BALANCE_GRID)
        )
        estimate = nested(faces, recipes=recipes)
        rows = by_set(faces, estimate["probs"], estimate["found"]).items()
    else:  # the shipped recipe and tau, with and without the mesh, on the same folds
        recipes = [rule.Recipe(i, True, 0.3, 1.0) for i in ("probabilities + zoo features", WITH_MESH)]
        logits, share = cross_validated(recipes, faces, folds_of(faces))
        found = faces.found(True)
        rows = [(r.inputs, scored(softmax(logits[r] - 0.1 * share[r]), found, faces.y)) for r in recipes]
    for name, s in rows:
        recall = " ".join(f"{k} {v:.1%}" for k, v in s["recall"].items())
        print(f"{name}: accuracy {s['accuracy']:.1%}, balanced {s['balanced_accuracy']:.1%}; {recall}")


if __name__ == "__main__":
    main()
