"""The nested group cross-validation that chooses the combination rule and says honestly how well it does.

Every choice a rule makes (its recipe, then its logit adjustment's tau) is taken by `choose`, on inner folds
(by person or film) of the faces it is given. `nested` runs `choose` and the fit inside each outer fold and
scores the fold it never saw; `transfer` does the same across two folders. The "unsure" threshold is read off
the nested estimate (`selective`, `choose_unsure`). Kept apart from `fit_combiner` (the command and the rule
file it writes) and from `combiner_rule` (what one candidate is and how it is fitted).
"""

from __future__ import annotations

import numpy as np

from fercam.second_opinion import softmax
from fercam.training.combiner_rule import RECIPES, TAU_GRID, Faces, K, Recipe, fit_rule
from fercam.training.wild import person_folds, scored

FOLDS = 5  # outer folds (the estimate) and inner folds (the choices), by person or film
UNSURE_GRID = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
ACCURACY_WINDOW = 0.01  # the logit adjustment may cost this much inner accuracy (see tau_by_accuracy_window)
RECALL_FLOOR = 0.25  # the bar for every class's recall (see tau_by_recall_floor)
MIN_LABELLED = 0.75  # the "unsure" threshold labels at least this share of faces (see choose_unsure)


def folds_of(faces: Faces, k: int = FOLDS) -> np.ndarray:
    """Folds by person or film, each with its share of every class."""
    return person_folds(tuple(faces.groups), k, faces.y)


def cross_validated(recipes, faces: Faces, folds: np.ndarray) -> tuple[dict, dict]:
    """Each recipe's logits for every face, from rules fitted on the other folds (tau 0), and the log class
    share of those folds' faces (what the logit adjustment subtracts, tau times)."""
    logits = {r: np.zeros((len(faces.y), K)) for r in recipes}
    log_share = {r: np.zeros((len(faces.y), K)) for r in recipes}
    for f in np.unique(folds):
        train, test = faces.take(folds != f), faces.take(folds == f)
        for r in recipes:
            rule = fit_rule(r, train)
            logits[r][folds == f], log_share[r][folds == f] = rule.logits(test), np.log(rule.class_share)
    return logits, log_share


def criterion(s: dict) -> float:
    return s["accuracy"] + s["balanced_accuracy"]


def tau_by_accuracy_window(scores: dict) -> float:
    """The tau with the best balanced accuracy among those within ACCURACY_WINDOW of the best accuracy: buy
    recall of the rare classes only where the common ones barely pay for it."""
    best = max(s["accuracy"] for s in scores.values())
    near = [t for t, s in scores.items() if s["accuracy"] >= best - ACCURACY_WINDOW - 1e-9]
    return max(near, key=lambda t: (scores[t]["balanced_accuracy"], -t))


def tau_by_recall_floor(scores: dict) -> float:
    """The smallest tau that gives every class present RECALL_FLOOR, else the best balanced accuracy."""
    for t in sorted(scores):
        recalls = [r for r, n in zip(scores[t]["recall"].values(), np.sum(scores[t]["confusion"], 1)) if n]
        if min(recalls) >= RECALL_FLOOR:
            return t
    return max(sorted(scores), key=lambda t: scores[t]["balanced_accuracy"])


TAU_RULES = {"accuracy-window": tau_by_accuracy_window, "recall-floor": tau_by_recall_floor}


def choose(faces: Faces, recipes=RECIPES, tau_rule: str = "accuracy-window") -> tuple[Recipe, float, dict]:
    """The recipe with the best cross-validated accuracy + balanced accuracy on inner folds of `faces`, then
    its logit adjustment's tau by `tau_rule` on the same inner folds; every recipe's inner score (the
    in-sample table: chosen on the folds it is scored on), each tau's, and the chosen rule's inner logits."""
    logits, log_share = cross_validated(recipes, faces, folds_of(faces))
    table = {r: scored(softmax(logits[r]), faces.found(r.fallback), faces.y) for r in recipes}
    recipe = max(recipes, key=lambda r: criterion(table[r]))
    found = faces.found(recipe.fallback)
    adjusted = {t: logits[recipe] - t * log_share[recipe] for t in TAU_GRID}
    taus = {t: scored(softmax(z), found, faces.y) for t, z in adjusted.items()}
    tau = TAU_RULES[tau_rule](taus)
    return recipe, tau, {"table": table, "taus": taus, "logits": adjusted[tau]}


def nested(faces: Faces, recipes=RECIPES, tau_rule: str = "accuracy-window", log=print) -> dict:
    """The honest estimate: in each outer fold, `choose` and fit on the other folds, score the fold."""
    folds = folds_of(faces)
    probs, found, chosen = np.zeros((len(faces.y), K), np.float32), np.zeros(len(faces.y), bool), []
    for f in np.unique(folds):
        train, test = faces.take(folds != f), faces.take(folds == f)
        recipe, tau, _ = choose(train, recipes, tau_rule)
        chosen.append((recipe, tau))
        probs[folds == f] = softmax(fit_rule(recipe, train, tau).logits(test))
        found[folds == f] = test.found(recipe.fallback)
        log(f"  outer fold {f + 1}: chose {recipe.name}, l2 {recipe.l2}, balance {recipe.balance}, tau {tau}")
    return {"probs": probs, "found": found, "folds": folds, "chosen": chosen}


def transfer(source: Faces, target: Faces, recipes=RECIPES, tau_rule: str = "accuracy-window") -> tuple:
    """`choose` and fit on `source` alone, score `target`: the recipe, tau and score."""
    recipe, tau, _ = choose(source, recipes, tau_rule)
    rule = fit_rule(recipe, source, tau)
    return recipe, tau, scored(softmax(rule.logits(target)), target.found(recipe.fallback), target.y)


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
