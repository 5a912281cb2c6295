"""The combination rule's candidates and their closed-form fit: the labelled faces with every model output a
candidate reads, the recipes (inputs, YuNet fallback, L2 penalty, class balance), and the fitted rule.

`fit_combiner` chooses among these recipes and the logit adjustment's tau (by `nested`'s folds) and writes the
chosen rule out; this module only says what a candidate is and fits one on the faces it is given, so the
choosing and the fitting can be read, and tested, apart.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.combined import EPS
from fercam.training.stacking import balance_weights, fit_softmax
from fercam.training.wild import face_outputs, read_photo_set
from fercam.types import EMOTIONS

K = len(EMOTIONS)
L2_GRID = (0.03, 0.3)
BALANCE_GRID = (0.5, 1.0)
# Logit adjustment (Menon et al. 2021): at prediction the logits get -tau * log(class share among the training
# faces), which moves the decisions towards the rare classes (disgust, fear) without refitting; tau is chosen
# after the fit (`nested.choose`), so trying each costs nothing.
TAU_GRID = (0.0, 0.1, 0.25, 0.5, 0.75, 1.0)
GROUP_POWER = 0.5  # each face weighs n_group ** -0.5: one actor's 151 faces, or one film's 40, must not set the rule
PCA = {"zoo_features": 32, "ours_features": 16}  # components kept of each network's penultimate features
# The candidate inputs: log-probabilities of our model and the zoo model (the zoo model's mirror view
# averaged in or not), optionally with either network's penultimate features (whitened principal components).
INPUTS = {
    "both models' probabilities": ("ours", "zoo"),
    "both models' probabilities, zoo mirror view": ("ours", "zoo_mirror"),
    "probabilities + zoo features": ("ours", "zoo", "zoo_features"),
}


@dataclass(frozen=True)
class Faces:
    """Labelled faces from one or more photo folders, with every model output the candidates read."""

    files: np.ndarray  # (N,) file names
    y: np.ndarray  # (N,) FER2013 codes
    groups: np.ndarray  # (N,) "set/person" or "set/film": what a split keeps on one side
    sets: np.ndarray  # (N,) the folder's name
    outputs: dict  # per-face arrays from `face_outputs`

    def take(self, index: np.ndarray) -> Faces:
        return Faces(
            self.files[index],
            self.y[index],
            self.groups[index],
            self.sets[index],
            {k: v[index] for k, v in self.outputs.items()},
        )

    def found(self, fallback: bool) -> np.ndarray:
        return self.outputs["mtcnn_found"] | (fallback & self.outputs["yunet_found"])

    def blocks(self, names: tuple[str, ...], fallback: bool) -> list[np.ndarray]:
        """The raw input blocks of a candidate, from YuNet's face where MTCNN found none (with `fallback`). A name
        not listed here is a per-face output by that name (`mtcnn_<name>`, `yunet_<name>`) as it is: a tool's
        extra opinion (`tools/mesh_third_opinion.py`)."""
        o = self.outputs
        use_yunet = (fallback & ~o["mtcnn_found"] & o["yunet_found"])[:, None]

        def pick(key):
            return np.where(use_yunet, o[f"yunet_{key}"], o[f"mtcnn_{key}"]).astype(np.float64)

        made = {
            "ours": lambda: _logp(pick("ours")),
            "zoo": lambda: _logp(pick("second")),
            "zoo_mirror": lambda: _logp((pick("second") + pick("second_flip")) / 2),
            "zoo_features": lambda: pick("second_feat"),
            "ours_features": lambda: pick("ours_feat"),
        }
        return [made[name]() if name in made else pick(name) for name in names]


def _logp(p: np.ndarray) -> np.ndarray:
    return np.log(np.maximum(p, EPS))


def load_faces(folders: list[Path], cache: Path, classifier: Path | None = None, log=print) -> Faces:
    parts = []
    for folder in folders:
        photos = read_photo_set(folder)
        if photos.persons is None:
            raise ValueError(f"{folder}: labels.csv needs a person (or movie) column to fit by held-out folds")
        o = face_outputs(photos, cache, classifier_path=classifier, log=log)
        n = len(photos.files)
        name = Path(folder).name
        groups = np.array([f"{name}/{p}" for p in photos.persons])
        parts.append(Faces(np.array(photos.files), photos.labels, groups, np.full(n, name), o))
    keys = set.intersection(*(set(p.outputs) for p in parts))
    return Faces(
        np.concatenate([p.files for p in parts]),
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.groups for p in parts]),
        np.concatenate([p.sets for p in parts]),
        {k: np.concatenate([p.outputs[k] for p in parts]) for k in keys},
    )


@dataclass(frozen=True)
class Recipe:
    """One candidate rule: its inputs, whether YuNet reads the pictures MTCNN finds no face in, its options."""

    inputs: str
    fallback: bool
    l2: float
    balance: float

    @property
    def name(self) -> str:
        return self.inputs + (" + YuNet where MTCNN finds none" if self.fallback else "")


RECIPES = tuple(
    Recipe(inputs, fallback, l2, balance)
    for inputs, fallback, l2, balance in itertools.product(INPUTS, (False, True), L2_GRID, BALANCE_GRID)
)


@dataclass(frozen=True)
class Rule:
    """softmax(weights @ raw inputs + bias - tau * log class_share): linear in the blocks' raw values (principal
    components folded in), logit-adjusted by the class mix it was fitted on."""

    recipe: Recipe
    weights: np.ndarray  # (7, total raw inputs)
    bias: np.ndarray  # (7,)
    class_share: np.ndarray  # (7,) each class's share of the faces it was fitted on
    tau: float = 0.0

    def logits(self, faces: Faces) -> np.ndarray:
        x = np.hstack(faces.blocks(INPUTS[self.recipe.inputs], self.recipe.fallback))
        return x @ self.weights.T + self.bias - self.tau * np.log(self.class_share)


def group_weights(groups: np.ndarray) -> np.ndarray:
    _, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return counts[index].astype(float) ** -GROUP_POWER


def class_share(y: np.ndarray) -> np.ndarray:
    """Each class's share of the labels, a class without any counted as one face (its log stays finite)."""
    counts = np.maximum(np.bincount(y, minlength=K), 1)
    return counts / counts.sum()


def fit_rule(recipe: Recipe, faces: Faces, tau: float = 0.0) -> Rule:
    """The rule `recipe` describes, fitted on the faces found. A feature block enters as its first principal
    components (of the standardised features, whitened), fitted on these faces alone; the projection is
    then folded into the weights, so the rule applies to the raw features."""
    found = faces.found(recipe.fallback)
    names = INPUTS[recipe.inputs]
    blocks = faces.blocks(names, recipe.fallback)
    projections, columns = [], []
    for name, block in zip(names, blocks):
        if name not in PCA:
            projections.append((np.zeros(block.shape[1]), np.eye(block.shape[1])))
        else:
            train = block[found]
            mean, scale = train.mean(0), train.std(0) + 1e-6
            z = (train - mean) / scale
            variance, vectors = np.linalg.eigh(z.T @ z / len(z))  # ascending
            top = np.argsort(variance)[::-1][: PCA[name]]
            # raw -> whitened components: ((raw - mean) / scale) @ vectors / sqrt(variance)
            matrix = (vectors[:, top] / scale[:, None]) / np.sqrt(np.maximum(variance[top], 1e-9))
            projections.append((mean, matrix))
        columns.append((block - projections[-1][0]) @ projections[-1][1])
    x = np.hstack(columns)
    group = group_weights(faces.groups)[found]  # balanced by their weight: 104 of 163 disgust faces are one actor's
    weight = balance_weights(faces.y[found], K, recipe.balance, mass=group) * group
    w, b = fit_softmax(x[found], faces.y[found], k=K, l2=recipe.l2, sample_weight=weight)
    raw_w, raw_b, start = [], b.copy(), 0
    for mean, matrix in projections:
        part = w[:, start : start + matrix.shape[1]] @ matrix.T  # (7, raw inputs of the block)
        raw_w.append(part)
        raw_b -= part @ mean
        start += matrix.shape[1]
    return Rule(recipe, np.hstack(raw_w), raw_b, class_share(faces.y[found]), tau)
