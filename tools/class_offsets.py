"""A logit offset for a rare class on top of the combined rule's logit adjustment (tried, not adopted:
models/README.md, "Tried and not adopted, 2026-12-08 (2)").

The shipped procedure chooses the recipe and tau on inner folds (`fercam.training.nested.choose`). Here, on the
same inner folds, each class in `--classes` (FER2013 indices; 1 = disgust) then gets the smallest offset in 0.25
steps up to 3 that lifts its inner recall to `--floor`, kept only if the inner accuracy falls by at most `--cap`;
the nested estimate scores each outer fold with its fold's offsets.

    PYTHONPATH=. python tools/class_offsets.py --cap 0.02 [--classes 1] [--floor 0.25] [--cache runs/wild_cache]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fercam.second_opinion import softmax
from fercam.training import nested
from fercam.training.combiner_rule import K, fit_rule
from fercam.training.fit_combiner import load_faces
from fercam.training.wild import scored
from fercam.types import EMOTIONS

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
STEPS = np.arange(0, 3.01, 0.25)


def offsets_for(logits: np.ndarray, found: np.ndarray, y: np.ndarray, classes, floor: float, cap: float):
    """Per class, in order, the smallest offset giving it `floor` recall, kept if accuracy drops <= `cap`."""
    offsets = np.zeros(K)
    base = scored(softmax(logits), found, y)["accuracy"]
    for c in classes:
        for step in STEPS:
            trial = offsets.copy()
            trial[c] = step
            score = scored(softmax(logits + trial), found, y)
            if score["recall"][EMOTIONS[c]] >= floor:
                offsets = trial if score["accuracy"] >= base - cap - 1e-9 else offsets
                break
    return offsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default="1", help="comma-separated FER2013 class indices (1: disgust)")
    parser.add_argument("--floor", type=float, default=0.25)
    parser.add_argument("--cap", type=float, default=0.01, help="inner accuracy an offset may cost")
    parser.add_argument("--cache", type=Path, default=Path("runs/wild_cache"))
    args = parser.parse_args()
    classes = [int(c) for c in args.classes.split(",")]
    folders = [SHARED / "wild_faces_dev", SHARED / "sfew_train"]
    faces = load_faces(folders, args.cache, None, lambda *_: None)
    folds = nested.folds_of(faces)
    probs, found = np.zeros((len(faces.y), K), np.float32), np.zeros(len(faces.y), bool)
    for f in np.unique(folds):
        train, test = faces.take(folds != f), faces.take(folds == f)
        recipe, tau, inner = nested.choose(train)
        offsets = offsets_for(inner["logits"], train.found(recipe.fallback), train.y, classes, args.floor, args.cap)
        print(f"outer fold {f + 1}: tau {tau}, offsets {dict(zip(EMOTIONS, offsets.round(2).tolist()))}")
        probs[folds == f] = softmax(fit_rule(recipe, train, tau).logits(test) + offsets)
        found[folds == f] = test.found(recipe.fallback)
    for name, s in nested.by_set(faces, probs, found).items():
        recalls = ", ".join(f"{e} {s['recall'][e]:.1%}" for e in EMOTIONS)
        print(f"nested, {name}: accuracy {s['accuracy']:.1%}, balanced {s['balanced_accuracy']:.1%}; {recalls}")


if __name__ == "__main__":
    main()
