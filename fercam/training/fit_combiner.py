"""Fit the combination rule on labelled photo folders, and say honestly how well it reads faces it never saw.

    python -m fercam.training.fit_combiner --data ../shared/data/wild_faces_dev --data ../shared/data/sfew_train

One command, reproducible (deterministic folds, a closed-form fitter): re-run it after replacing
`models/fer_cnn.tflite`. Per-face model outputs are cached under `--cache` by the models' contents.

Every choice the rule makes (its inputs, the YuNet fallback, the L2 penalty, the class balance) is taken by
`choose`, on inner folds of the faces it is given. The nested estimate runs `choose` and the fit inside each
outer fold and scores the fold it never saw: persons (or films) held out, no decision taken on them. The
in-sample figure (the best candidate's cross-validated score, chosen on the same folds it is scored on) is
printed beside it: the difference is what the choosing flattered. With two folders, each is also scored by
the rule the same code fits on the other one alone (cross-set transfer). The shipped rule is `choose` and the
fit on all faces; its "unsure" threshold is read off the nested estimate.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.combined import EPS, softmax
from fercam.training.stacking import balance_weights, fit_softmax
from fercam.training.wild import face_outputs, person_folds, read_photo_set, scored
from fercam.types import EMOTIONS

K = len(EMOTIONS)
FOLDS = 5  # outer folds (the estimate) and inner folds (the choices), by person or film
L2_GRID = (0.03, 0.3)
BALANCE_GRID = (0.5, 1.0)
GROUP_POWER = 0.5  # each face weighs n_group ** -0.5: one actor's 151 faces, or one film's 40, must not set the rule
PCA = {"zoo_features": 32, "ours_features": 16}  # components kept of each network's penultimate features
# The candidate inputs: log-probabilities of our model and the zoo model (the zoo model's mirror view
# averaged in or not), optionally with either network's penultimate features (whitened principal components).
INPUTS = {
    "both models' probabilities": ("ours", "zoo"),
    "both models' probabilities, zoo mirror view": ("ours", "zoo_mirror"),
    "probabilities + zoo features": ("ours", "zoo", "zoo_features"),
}
UNSURE_GRID = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
CHECK_EVERY = 15  # the fixed subset the tests re-score with the shipped files: every 15th picture
MIN_LABELLED = 0.75  # the "unsure" threshold labels at least this share of faces (see choose_unsure)


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
        """The raw input blocks of a candidate, from YuNet's face where MTCNN found none (with `fallback`)."""
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
        return [made[name]() for name in names]


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
    """softmax(weights @ raw inputs + bias): linear in the blocks' raw values (principal components folded in)."""

    recipe: Recipe
    weights: np.ndarray  # (7, total raw inputs)
    bias: np.ndarray  # (7,)

    def logits(self, faces: Faces) -> np.ndarray:
        x = np.hstack(faces.blocks(INPUTS[self.recipe.inputs], self.recipe.fallback))
        return x @ self.weights.T + self.bias


def group_weights(groups: np.ndarray) -> np.ndarray:
    _, index, counts = np.unique(groups, return_inverse=True, return_counts=True)
    return counts[index].astype(float) ** -GROUP_POWER


def fit_rule(recipe: Recipe, faces: Faces) -> Rule:
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
    weight = balance_weights(faces.y[found], K, recipe.balance) * group_weights(faces.groups)[found]
    w, b = fit_softmax(x[found], faces.y[found], k=K, l2=recipe.l2, sample_weight=weight)
    raw_w, raw_b, start = [], b.copy(), 0
    for mean, matrix in projections:
        part = w[:, start : start + matrix.shape[1]] @ matrix.T  # (7, raw inputs of the block)
        raw_w.append(part)
        raw_b -= part @ mean
        start += matrix.shape[1]
    return Rule(recipe, np.hstack(raw_w), raw_b)


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


def run(folders: list[Path], out: Path, cache: Path, classifier: Path | None = None, log=print) -> dict:
    faces = load_faces(folders, cache, classifier, log)
    log(f"{len(faces.y)} faces from {len(folders)} folders; nested estimate ({FOLDS} x {FOLDS} folds)")
    estimate = nested(faces, log=log)
    nested_scores = by_set(faces, estimate["probs"], estimate["found"])
    recipe, inner = choose(faces)
    rule = fit_rule(recipe, faces)
    in_sample = by_set(faces, softmax(inner["logits"][recipe]), faces.found(recipe.fallback))
    fitted = by_set(faces, softmax(rule.logits(faces)), faces.found(recipe.fallback))
    candidates = {}  # each candidate's in-sample score at its best options, as the old report gave it
    for r, s in inner["table"].items():
        if r.name not in candidates or criterion(s) > criterion(inner["table"][candidates[r.name]]):
            candidates[r.name] = r
    names = list(dict.fromkeys(faces.sets))
    transfers = {}
    if len(names) == 2:
        for a, b in (names, names[::-1]):
            log(f"  transfer: fitting on {a}, scoring {b}")
            chosen, score = transfer(faces.take(faces.sets == a), faces.take(faces.sets == b))
            own = nested(faces.take(faces.sets == a), log=lambda _: None)
            own_score = scored(own["probs"], own["found"], faces.y[faces.sets == a])
            transfers[f"{a} -> {b}"] = {"recipe": chosen.name, "score": score, "nested_on_source": own_score}
    table = selective(estimate["probs"], estimate["found"], faces.y)
    unsure_below = choose_unsure(table)
    shipped = _rule_file(rule, faces, folders, unsure_below, nested_scores, in_sample)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(shipped))
    report = {
        "nested": nested_scores,
        "in_sample": in_sample,
        "resubstitution": fitted,
        "chosen": recipe,
        "outer_choices": estimate["chosen"],
        "candidates": {name: inner["table"][r] for name, r in candidates.items()},
        "transfer": transfers,
        "selective": table,
        "unsure_below": unsure_below,
        "check": shipped["check"],
    }
    log(_report(report, faces))
    return shipped


def dump(rule_file: dict) -> str:
    """The rule file as JSON, one key a line (the weights' 7 x 526 numbers on theirs)."""
    return "{\n" + ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in rule_file.items()) + "\n}\n"


def _rule_file(rule: Rule, faces: Faces, folders, unsure_below, nested_scores, in_sample) -> dict:
    r = rule.recipe
    check = np.arange(0, len(faces.y), CHECK_EVERY)
    check = check[faces.sets[check] == faces.sets[0]]  # the first folder's pictures (the tests read them)
    found = faces.found(r.fallback)
    pred = np.where(found, rule.logits(faces).argmax(1), -1)[check]

    def brief(s):
        keys = ("samples", "accuracy", "balanced_accuracy", "recall")
        return {name: {k: v[k] for k in keys} for name, v in s.items()}

    return {
        "about": "fercam combined reading: softmax(weights @ inputs + bias); see models/README.md",
        "inputs": list(INPUTS[r.inputs]),
        "weights": np.round(rule.weights, 6).tolist(),
        "bias": np.round(rule.bias, 6).tolist(),
        "unsure_below": unsure_below,
        "fallback_detector": "yunet" if r.fallback else None,
        "fitted_on": {
            "data": [Path(f).name for f in folders],  # the folders' names: `fercam evaluate` knows them by name
            "faces": int(found.sum()),
            "recipe": r.name,
            "l2": r.l2,
            "balance": r.balance,
        },
        "estimate": {"nested": brief(nested_scores), "in_sample": brief(in_sample)},
        "check": {
            "files": faces.files[check].tolist(),
            "labels": faces.y[check].tolist(),
            "predicted": pred.tolist(),
            "correct": int((pred == faces.y[check]).sum()),
        },
    }


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _row(name: str, s: dict) -> str:
    return (
        f"| {name} | {_pct(s['accuracy'])} | {_pct(s['balanced_accuracy'])} | "
        + " | ".join(_pct(s["recall"][e]) for e in EMOTIONS)
        + f" | {s.get('no_face', 0)} |"
    )


def _report(report: dict, faces: Faces) -> str:
    head = ["| reading | accuracy | balanced | " + " | ".join(EMOTIONS) + " | no face |"]
    head.append("|---|---|---|" + "---|" * len(EMOTIONS) + "---|")
    lines = [
        f"Nested estimate: {FOLDS} outer folds by person or film (each with its share of every class); inside "
        f"each, the inputs, fallback, L2 and class balance are chosen on {FOLDS} inner folds of the other four. "
        "The largest face of each picture; a picture without one counts as wrong.",
        "",
        *head,
    ]
    for figure, title in (("nested", "nested (held out, every choice inside)"), ("in_sample", "in-sample")):
        for name, s in report[figure].items():
            lines.append(_row(f"{title}: {name}", s))
    lines.append(_row("fitted rule on its own faces: all", report["resubstitution"]["all"]))
    choices = [f"{r.name} (l2 {r.l2}, balance {r.balance})" for r in report["outer_choices"]]
    r = report["chosen"]
    lines += ["", "Chosen in the outer folds: " + "; ".join(choices) + ".", ""]
    lines += [f"Shipped (chosen on all faces): **{r.name}**, l2 {r.l2}, balance {r.balance}.", ""]
    lines += ["Candidates, in-sample (each at its best options, chosen on the folds it is scored on):", "", *head]
    lines += [_row(name, s) for name, s in report["candidates"].items()]
    if report["transfer"]:
        lines += ["", "Cross-set transfer (chosen and fitted on one folder alone, scored on the other):", "", *head]
        for pair, t in report["transfer"].items():
            source = pair.split(" -> ")[0]
            lines.append(_row(f"nested on {source} alone", t["nested_on_source"]))
            lines.append(_row(f"{pair} ({t['recipe']})", t["score"]))
    lines += ["", "Selective accuracy of the nested estimate (the shipped threshold is read off it):", ""]
    lines += ["| unsure below | share labelled | accuracy among labelled |", "|---|---|---|"]
    lines += [
        f"| {row['unsure_below']:.2f}{' (shipped)' if row['unsure_below'] == report['unsure_below'] else ''} | "
        f"{_pct(row['labelled'])} | {_pct(row['accuracy_labelled'])} |"
        for row in report["selective"]
    ]
    c = report["check"]
    lines += [
        "",
        f"Fixed check subset (every {CHECK_EVERY}th picture of the first folder, {len(c['files'])} pictures), "
        f"the shipped rule fitted on all faces: {c['correct']} of {len(c['files'])} right.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fercam.training.fit_combiner", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", required=True, action="append", help="a folder with labels.csv (file,label,person or movie); repeat"
    )
    parser.add_argument("--out", default="models/fer_combiner.json", help="the rule file to write")
    parser.add_argument("--cache", default="runs/wild_cache", help="folder for the per-face model outputs")
    parser.add_argument("--classifier", help="our model file (default: the shipped fer_cnn.tflite)")
    args = parser.parse_args(argv)
    try:
        run(
            [Path(d) for d in args.data],
            Path(args.out),
            Path(args.cache),
            Path(args.classifier) if args.classifier else None,
        )
    except (ValueError, OSError) as exc:
        print(f"fit_combiner: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
