"""The nested group cross-validation that chooses the combination rule and says honestly how well it does.

Every choice a rule makes is taken by `choose`, on inner folds (by person or film) of the faces it is given.
`nested` runs `choose` and the fit inside each outer fold and scores the fold it never saw; `transfer` does
the same across two folders. The "unsure" threshold is read off the nested estimate (`selective`,
`choose_unsure`). Kept apart from `fit_combiner` (the command and the rule file it writes) and from
`combiner_rule` (what one candidate is and how it is fitted).
"""

from __future__ import annotations

import numpy as np

from fercam.second_opinion import softmax
from fercam.training.combiner_rule import RECIPES, Faces, K, Recipe, fit_rule
from fercam.training.wild import person_folds, scored

FOLDS = 5  # outer folds (the estimate) and inner folds (the choices), by person or film
UNSURE_GRID = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
MIN_LABELLED = 0.75  # the "unsure" threshold labels at least this share of faces (see choose_unsure)


def folds_of(faces: Faces, k: int = FOLDS) -> np.ndarray:
    """Folds by person or film, each with its share of every class."""
    return person_folds(tuple(faces.groups), k, faces.y)


def cross_validated(recipes, faces: Faces, folds: np.ndarray) -> dict:
    """Each recipe's logits for every face, from rules fitted on the other folds."""
    out = {r: np.zeros((len(faces.y), K)) for r in recipes}
    for f in np.unique(folds):
        train, test = faces.take(folds != f), faces.take(folds == f)
        for r in recipes:
            out[r][folds == f] = fit_rule(r, train).logits(test)
    return out


def criterion(s: dict) -> float:
    return s["accuracy"] + s["balanced_accuracy"]


def choose(faces: Faces, recipes=RECIPES) -> tuple[Recipe, dict]:
    """The recipe with the best cross-validated accuracy + balanced accuracy on inner folds of `faces`,
    and every recipe's inner score (the in-sample table: chosen on the folds it is scored on)."""
    logits = cross_validated(recipes, faces, folds_of(faces))
    table = {r: scored(softmax(logits[r]), faces.found(r.fallback), faces.y) for r in recipes}
    return max(recipes, key=lambda r: criterion(table[r])), {"table": table, "logits": logits}


def nested(faces: Faces, recipes=RECIPES, log=print) -> dict:
    """The honest estimate: in each outer fold, `choose` and fit on the other folds, score the fold."""
    folds = folds_of(faces)
    probs, found, chosen = np.zeros((len(faces.y), K), np.float32), np.zeros(len(faces.y), bool), []
    for f in np.unique(folds):
        train, test = faces.take(folds != f), faces.take(folds == f)
        recipe, _ = choose(train, recipes)
        chosen.append(recipe)
        probs[folds == f] = softmax(fit_rule(recipe, train).logits(test))
        found[folds == f] = test.found(recipe.fallback)
        log(f"  outer fold {f + 1}: chose {recipe.name}, l2 {recipe.l2}, balance {recipe.balance}")
    return {"probs": probs, "found": found, "folds": folds, "chosen": chosen}


def transfer(source: Faces, target: Faces, recipes=RECIPES) -> tuple[Recipe, dict]:
    """`choose` and fit on `source` alone, score `target`."""
    recipe, _ = choose(source, recipes)
    rule = fit_rule(recipe, source)
    return recipe, scored(softmax(rule.logits(target)), target.found(recipe.fallback), target.y)


def selective(probs: np.ndarray, found: np.ndarray, y: np.ndarray) -> list[dict]:
    """Accuracy among the faces labelled (confidence >= t) against the share labelled, for each t."""
    conf, right = probs.max(1), (probs.argmax(1) == y) & found
    rows = []
    for t in UNSURE_GRID:
        keep = found & (conf >= t)
        rows.append(
            {
                "unsure_below": t,
                "labelled": round(float(keep.sum() / found.sum()), 4),
                "accuracy_labelled": round(float(right[keep].mean()), 4) if keep.any() else 0.0,
            }
        )
    return rows


def choose_unsure(rows: list[dict]) -> float:
    """The highest threshold that still labels MIN_LABELLED of the faces: the most honest labels a user
    still sees on three faces in four."""
    return max(r["unsure_below"] for r in rows if r["labelled"] >= MIN_LABELLED)


def by_set(faces: Faces, probs: np.ndarray, found: np.ndarray) -> dict:
    """Scores on all faces and on each folder's faces."""
    out = {"all": scored(probs, found, faces.y)}
    for name in dict.fromkeys(faces.sets):
        keep = faces.sets == name
        out[name] = scored(probs[keep], found[keep], faces.y[keep])
    return out
