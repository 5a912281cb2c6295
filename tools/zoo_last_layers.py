"""The zoo model's last layers fine-tuned on the development faces (#41, "fine-tuning the last layers"): does the
combined reading gain, with persons and films held out?

The zoo network (`fer_mobilefacenet_2022july_int8.onnx`, dequantised, run in TensorFlow by
`tools/zoo_fer_to_litert.py`'s `run_nodes`) is split after its last residual block (the graph's last Add, a
7x7x128 map): the trunk stays frozen and its output is computed once per face; the head (a 1x1 convolution to 512
channels, PReLU, the 7x7 depthwise convolution, a 1x1 convolution to the 512 features, the classifier; 357k
weights) is fine-tuned from the zoo's own weights: cross-entropy on the FER2013 labels weighed as the rule weighs
its faces (by person or film, then by class), both views of each face, Adam, and an L2 pull towards the zoo's
weights.

The comparison is nested and cross-fitted, on `fit_combiner`'s folds: in each outer fold, a head fine-tuned on the
other folds reads the fold; the training faces' readings come from heads fine-tuned without their own inner fold,
so that the rule fitted on them sees readings as honest as the ones it is scored on. The shipped recipe
(probabilities + zoo features + YuNet where MTCNN finds none, l2 0.3, balance 1, tau 0.1) is fitted on those
readings and on the zoo's own, and scored on the outer fold. No setting is chosen inside: the ones given are fixed.

    PYTHONPATH=. python tools/zoo_last_layers.py [--epochs 8] [--lr 1e-4] [--pull 1e-2]

About 6 minutes on 2 cores (25 fine-tunes) once `fit_combiner`'s cache and this tool's trunk cache
(`runs/zoo_trunk`, 2 minutes to build) exist. Needs the train extra (TensorFlow, onnx). Findings: models/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import tensorflow as tf

from fercam.second_opinion import RAF_TO_FER, aligned_faces, softmax
from fercam.training import combiner_rule as rules
from fercam.training.nested import folds_of
from fercam.training.stacking import balance_weights
from fercam.training.wild import _largest, read_photo_set, scored
from fercam.types import EMOTIONS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dequantize_zoo_fer import dequantize  # noqa: E402
from zoo_fer_to_litert import IN, feature_tensor, initializers, normalised, run_nodes  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = [ROOT.parent / "shared" / "data" / name for name in ("wild_faces_dev", "sfew_train")]
DETECTORS = ("mtcnn", "yunet")
RECIPE = rules.Recipe("probabilities + zoo features", True, 0.3, 1.0)
TAU = 0.1


class SplitZoo:
    """The zoo network as a frozen trunk (`trunk`: aligned BGR faces -> the last residual block's 7x7x128 map)
    and a head run with given weights (`head`: map -> logits in RAF-DB order, and the 512 features)."""

    def __init__(self, path: Path = IN) -> None:
        self.model = dequantize(onnx.load(str(path)))
        nodes = list(self.model.graph.node)
        self.weights = initializers(self.model)  # converted once: the graph runs once a face, then once a batch
        # the last residual sum: an Add of two computed tensors (the classifier's bias is an Add of a constant)
        cut = max(i for i, n in enumerate(nodes) if n.op_type == "Add" and not set(n.input) & set(self.weights))
        self.cut, self._trunk, self._head = nodes[cut].output[0], nodes[: cut + 1], nodes[cut + 1 :]
        self.head_weights = {
            name: self.weights[name].astype(np.float32)
            for node in self._head
            for name in node.input[1:]
            if name in self.weights
        }
        self._features = feature_tensor(self.model)

    def trunk(self, faces: np.ndarray) -> np.ndarray:
        values = {self.model.graph.input[0].name: normalised(tf.constant(faces, tf.float32))}
        return run_nodes(self.model, values, self._trunk, self.weights)[self.cut].numpy()

    def head(self, maps, weights: dict | None = None):
        """`weights`: the head's, by name (default: the zoo's own, `head_weights`)."""
        values = run_nodes(self.model, {self.cut: maps}, self._head, self.weights | (weights or {}))
        return values[self.model.graph.output[0].name], values[self._features]


def trunk_maps(zoo: SplitZoo, folder: Path, cache: Path) -> dict:
    """Per picture of `folder` and per detector: the trunk's map of the largest face and of its mirror image
    (N, 2, 7, 7, 128), and whether there was an aligned face; cached by the pictures' names and the model."""
    from fercam.detection import load_detector

    photos = read_photo_set(folder)
    key = hashlib.sha256(IN.read_bytes() + "\n".join(photos.files).encode()).hexdigest()[:12]
    target = cache / f"{folder.name}-{key}.npz"
    if target.is_file():
        return dict(np.load(target))
    n = len(photos.files)
    out = {f"{d}_map": np.zeros((n, 2, 7, 7, 128), np.float16) for d in DETECTORS}
    out |= {f"{d}_aligned": np.zeros(n, bool) for d in DETECTORS}
    for d in DETECTORS:
        detector = load_detector(d)
        for i, name in enumerate(photos.files):
            image = cv2.imread(str(photos.path(name)), cv2.IMREAD_COLOR)
            face = _largest(detector.detect(image))
            aligned = aligned_faces(image, [face])[0] if face is not None else None
            if aligned is not None:
                out[f"{d}_map"][i] = zoo.trunk(np.stack([aligned, aligned[:, ::-1]]))
                out[f"{d}_aligned"][i] = True
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(target, **out)
    return out


class FineTuning:
    """Fine-tunes the head on some faces (`fit`) and reads faces with a fine-tuned head (`read`)."""

    def __init__(self, zoo: SplitZoo, faces: rules.Faces, maps: np.ndarray, *, epochs: int, lr: float, pull: float):
        self.zoo, self.faces, self.maps = zoo, faces, maps
        self.epochs, self.lr, self.pull = epochs, lr, pull
        self.raf_label = np.asarray(RAF_TO_FER)[faces.y]  # FER2013 class j is the zoo's output RAF_TO_FER[j]

    def fit(self, index: np.ndarray) -> dict:
        start = self.zoo.head_weights
        weights = {name: tf.Variable(value) for name, value in start.items()}
        group = rules.group_weights(self.faces.groups[index])
        w = balance_weights(self.faces.y[index], len(EMOTIONS), RECIPE.balance, mass=group) * group
        x = np.concatenate([self.maps[index, 0], self.maps[index, 1]]).astype(np.float32)  # both views
        t, w = np.tile(self.raf_label[index], 2), np.tile((w / w.mean()).astype(np.float32), 2)
        optimizer, variables = tf.keras.optimizers.Adam(self.lr), list(weights.values())

        @tf.function
        def step(maps, labels, weight):
            with tf.GradientTape() as tape:
                logits, _ = self.zoo.head(maps, weights)
                loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
                loss = tf.reduce_sum(loss * weight) / tf.reduce_sum(weight)
                loss += self.pull * tf.add_n([tf.reduce_mean(tf.square(v - start[k])) for k, v in weights.items()])
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))

        order = np.random.default_rng(0)
        for _ in range(self.epochs):
            batches = order.permutation(len(x))
            for b in np.array_split(batches, max(1, len(x) // 64)):
                step(x[b], t[b], w[b])
        return weights

    def read(self, weights: dict, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """FER2013-order probabilities and the 512 features of the faces' own view (as the app reads them)."""
        logits, features = self.zoo.head(tf.constant(self.maps[index, 0], tf.float32), weights)
        return softmax(logits.numpy()[:, RAF_TO_FER]), features.numpy()


def with_zoo(faces: rules.Faces, readable: np.ndarray, probs: np.ndarray, features: np.ndarray) -> rules.Faces:
    """`faces` with the zoo model's outputs replaced by these where the face was readable."""
    outputs = dict(faces.outputs)
    for d in DETECTORS:
        outputs[f"{d}_second"] = np.where(readable[:, None], probs, outputs[f"{d}_second"]).astype(np.float32)
        outputs[f"{d}_second_feat"] = np.where(readable[:, None], features, outputs[f"{d}_second_feat"])
    return rules.Faces(faces.files, faces.y, faces.groups, faces.sets, outputs)


def compare(faces: rules.Faces, tuning: FineTuning, readable: np.ndarray, log=print) -> dict:
    """Outer-fold probabilities of the recipe on the zoo's outputs and on fine-tuned, cross-fitted ones, and of the
    zoo model alone, before and after."""
    folds, n = folds_of(faces), len(faces.y)
    out = {name: np.full((n, len(EMOTIONS)), 1 / len(EMOTIONS)) for name in ("shipped", "tuned", "tuned zoo alone")}
    for f in np.unique(folds):
        train, test = np.flatnonzero(folds != f), np.flatnonzero(folds == f)
        probs, features = np.zeros((n, len(EMOTIONS))), np.zeros((n, 512), np.float32)
        for g in np.unique(folds[train]):  # cross-fitting: each inner fold read by a head that never saw it
            inner = train[folds[train] == g]
            weights = tuning.fit(train[(folds[train] != g) & readable[train]])
            probs[inner], features[inner] = tuning.read(weights, inner)
        weights = tuning.fit(train[readable[train]])
        probs[test], features[test] = tuning.read(weights, test)
        tuned = with_zoo(faces, readable, probs, features)
        out["tuned"][test] = softmax(rules.fit_rule(RECIPE, tuned.take(train), TAU).logits(tuned.take(test)))
        out["shipped"][test] = softmax(rules.fit_rule(RECIPE, faces.take(train), TAU).logits(faces.take(test)))
        out["tuned zoo alone"][test] = probs[test]
        log(f"  outer fold {f + 1} of {len(np.unique(folds))} done")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--pull", type=float, default=1e-2, help="weight of the L2 pull towards the zoo's weights")
    parser.add_argument("--cache", default=str(ROOT / "runs" / "wild_cache"), help="fit_combiner's per-face cache")
    args = parser.parse_args(argv)
    tf.random.set_seed(0)
    zoo, faces = SplitZoo(), rules.load_faces(DATA, Path(args.cache))
    parts = [trunk_maps(zoo, folder, ROOT / "runs" / "zoo_trunk") for folder in DATA]
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    yunet = ~faces.outputs["mtcnn_found"] & faces.outputs["yunet_found"]  # the fallback's face, as the rule reads
    maps = np.where(yunet[:, None, None, None, None], joined["yunet_map"], joined["mtcnn_map"])
    readable = faces.found(True) & np.where(yunet, joined["yunet_aligned"], joined["mtcnn_aligned"])
    tuning = FineTuning(zoo, faces, maps, epochs=args.epochs, lr=args.lr, pull=args.pull)
    probs = compare(faces, tuning, readable)
    zoo_alone = np.where(yunet[:, None], faces.outputs["yunet_second"], faces.outputs["mtcnn_second"])
    rows = {
        "the shipped recipe on the zoo's outputs": (probs["shipped"], faces.found(True)),
        "the shipped recipe on fine-tuned outputs": (probs["tuned"], faces.found(True)),
        "the zoo model alone": (zoo_alone, readable),
        "the fine-tuned zoo model alone": (probs["tuned zoo alone"], readable),
    }
    print(f"epochs {args.epochs}, lr {args.lr}, pull {args.pull}; {readable.sum()} of {len(faces.y)} faces readable")
    print("| reading | set | accuracy | balanced | " + " | ".join(EMOTIONS) + " |")
    print("|---|---|---|---|" + "---|" * len(EMOTIONS))
    for name, (p, found) in rows.items():
        for set_name in ("all", *dict.fromkeys(faces.sets)):
            keep = np.ones(len(faces.y), bool) if set_name == "all" else faces.sets == set_name
            s = scored(p[keep], found[keep], faces.y[keep])
            recall = " | ".join(f"{v:.1%}" for v in s["recall"].values())
            print(f"| {name} | {set_name} | {s['accuracy']:.1%} | {s['balanced_accuracy']:.1%} | {recall} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
