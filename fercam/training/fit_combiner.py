"""Fit the combination rule on a labelled photo folder, by held-out-persons folds; write `fer_combiner.json`.

    python -m fercam.training.fit_combiner --data ../shared/data/wild_faces_dev --out models/fer_combiner.json

One command, reproducible (deterministic folds, a closed-form fitter): re-run it after replacing
`models/fer_cnn.tflite`. Per-face model outputs are cached under `--cache` by the models' contents, so
only a changed model is run again. It prints, as Markdown tables, what the model card quotes: every
candidate's held-out-persons scores, the selective-accuracy table behind the "unsure" threshold, and what
the resting-face correction changes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fercam.combined import features, softmax
from fercam.training.stacking import balance_weights, fit_softmax
from fercam.training.wild import face_outputs, person_folds, read_photo_set, scored
from fercam.types import EMOTIONS

K = len(EMOTIONS)
FOLDS = 5
L2_GRID = (0.03, 0.1, 0.3)
BALANCE_GRID = (0.5, 0.75, 1.0)
PERSON_POWER = 0.5  # each face weighs n_person ** -0.5: one actor's 151 faces must not set the rule
UNSURE_GRID = (0.0, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.7)
CHECK_EVERY = 15  # the fixed subset the tests re-score with the shipped files: every 15th picture
MIN_LABELLED = 0.75  # the "unsure" threshold labels at least this share of faces (see choose_unsure)
RESTING_PRIORS = (1.0, 3.0, 10.0)


def person_weights(persons) -> np.ndarray:
    _, index, counts = np.unique(np.array(persons), return_inverse=True, return_counts=True)
    return counts[index].astype(float) ** -PERSON_POWER


def fit(x, y, per_person, *, l2: float, balance: float):
    return fit_softmax(x, y, k=K, l2=l2, sample_weight=balance_weights(y, K, balance) * per_person)


def cross_validated(x, y, found, folds, per_person, *, l2: float, balance: float) -> np.ndarray:
    """Logits of each face from a rule fitted on the other folds' faces."""
    logits = np.zeros((len(y), K))
    for f in np.unique(folds):
        train = found & (folds != f)
        w, b = fit(x[train], y[train], per_person[train], l2=l2, balance=balance)
        logits[folds == f] = x[folds == f] @ w.T + b
    return logits


def per_fold(probs, found, y, folds) -> list[dict]:
    return [scored(probs[folds == f], found[folds == f], y[folds == f]) for f in np.unique(folds)]


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


def resting_face(logits, y, found, persons) -> list[dict]:
    """Each face corrected by its person's other faces ("history"), as the tracker does over time:
    z - (m - m0), m = (sum of the history's centred log-probabilities + prior * m0) / (n + prior),
    m0 the mean over all faces. Scored on faces whose person has other faces."""
    logp = np.log(np.maximum(softmax(logits), 1e-4))
    centred = logp - logp.mean(1, keepdims=True)
    m0 = centred[found].mean(0)
    people = np.array(persons)
    has_history = np.array([found[(people == p)].sum() > 1 for p in persons]) & found
    rows = []
    base = scored(softmax(logits[has_history]), found[has_history], y[has_history])
    rows.append({"prior": None, "accuracy": base["accuracy"], "balanced_accuracy": base["balanced_accuracy"]})
    for prior in RESTING_PRIORS:
        corrected = logits.copy()
        for i in np.flatnonzero(has_history):
            others = (people == people[i]) & found
            others[i] = False
            m = (centred[others].sum(0) + prior * m0) / (others.sum() + prior)
            corrected[i] = logits[i] - (m - m0)
        s = scored(softmax(corrected[has_history]), found[has_history], y[has_history])
        rows.append({"prior": prior, "accuracy": s["accuracy"], "balanced_accuracy": s["balanced_accuracy"]})
    return [dict(r, faces=int(has_history.sum())) for r in rows]


def run(data: Path, out: Path, cache: Path, classifier: Path | None = None, log=print) -> dict:
    photos = read_photo_set(data)
    if photos.persons is None:
        raise ValueError(f"{data}: labels.csv needs a person column to fit by held-out-persons folds")
    y, folds = photos.labels, person_folds(photos.persons, FOLDS)
    per_person = person_weights(photos.persons)
    o = face_outputs(photos, cache, classifier_path=classifier, log=log)
    found, yunet_found = o["mtcnn_found"], o["yunet_found"]
    # the YuNet fallback candidate: YuNet's face where MTCNN found none
    fb = {k: np.where((~found & yunet_found)[:, None], o[f"yunet_{k}"], o[f"mtcnn_{k}"]) for k in ("ours", "second")}
    fb_found = found | yunet_found
    second_mirror = (o["mtcnn_second"] + o["mtcnn_second_flip"]) / 2
    candidates = {
        "fer_cnn alone (shipped before)": (None, o["mtcnn_ours"], found),
        "zoo RAF-DB model alone": (None, o["mtcnn_second"], found),
        "mean of both": (None, (o["mtcnn_ours"] + o["mtcnn_second"]) / 2, found),
        "combined (learnt rule)": (features(o["mtcnn_ours"], o["mtcnn_second"]), None, found),
        "combined, zoo model with its mirror view": (features(o["mtcnn_ours"], second_mirror), None, found),
        "combined, contrast-equalised grey crop": (features(o["mtcnn_ours_eq"], o["mtcnn_second"]), None, found),
        "combined + YuNet where MTCNN finds none": (features(fb["ours"], fb["second"]), None, fb_found),
    }
    results, chosen_options = {}, {}
    for name, (x, probs, has_face) in candidates.items():
        if x is None:
            results[name] = {"all": scored(probs, has_face, y), "folds": per_fold(probs, has_face, y, folds)}
            continue
        best = None
        for l2 in L2_GRID:
            for balance in BALANCE_GRID:
                p = softmax(cross_validated(x, y, has_face, folds, per_person, l2=l2, balance=balance))
                s = scored(p, has_face, y)
                if best is None or s["accuracy"] + s["balanced_accuracy"] > best[0]:
                    best = (s["accuracy"] + s["balanced_accuracy"], l2, balance, p)
        _, l2, balance, p = best
        chosen_options[name] = {"l2": l2, "balance": balance}
        results[name] = {"all": scored(p, has_face, y), "folds": per_fold(p, has_face, y, folds), "probs": p}
        log(f"{name}: l2 {l2}, balance {balance}")
    for name, r in results.items():
        log(f"{name:45s} accuracy {r['all']['accuracy']:.3f}  balanced {r['all']['balanced_accuracy']:.3f}")

    shipped = "combined (learnt rule)"
    adopted = _adopted(results, shipped, ("combined + YuNet where MTCNN finds none",))
    x, has_face = candidates[adopted][0], candidates[adopted][2]
    oof = results[adopted]["probs"]
    table = selective(oof, has_face, y)
    unsure_below = choose_unsure(table)
    weights, bias = fit(x[has_face], y[has_face], per_person[has_face], **chosen_options[adopted])
    resting = resting_face(np.log(np.maximum(oof, 1e-12)), y, has_face, photos.persons)

    check = np.arange(0, len(y), CHECK_EVERY)
    full = softmax(x @ weights.T + bias)
    check_pred = np.where(has_face[check], full[check].argmax(1), -1)
    rule = {
        "about": "fercam combined reading: softmax(weights @ log [p_fer_cnn, p_zoo] + bias); see models/README.md",
        "inputs": ["fer_cnn.tflite (grey 48 px crop, both views)", "fer_mobilefacenet_2022july_int8.onnx (aligned)"],
        "weights": np.round(weights, 6).tolist(),
        "bias": np.round(bias, 6).tolist(),
        "unsure_below": unsure_below,
        "fallback_detector": "yunet" if adopted != shipped else None,
        "fitted_on": {"data": str(data), "faces": int(has_face.sum()), "folds": FOLDS, **chosen_options[adopted]},
        "check": {
            "files": [photos.files[i] for i in check],
            "labels": y[check].tolist(),
            "predicted": check_pred.tolist(),
            "correct": int((check_pred == y[check]).sum()),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rule, indent=1) + "\n")
    log(_report(results, table, unsure_below, resting, adopted, rule, photos, folds))
    return rule


def _adopted(results: dict, base: str, options: tuple[str, ...]) -> str:
    """The base rule, or an option that beats it on both accuracy and balanced accuracy."""
    best = base
    for name in options:
        a, b = results[name]["all"], results[best]["all"]
        if a["accuracy"] > b["accuracy"] and a["balanced_accuracy"] > b["balanced_accuracy"]:
            best = name
    return best


def _pct(v: float) -> str:
    return f"{100 * v:.1f}%"


def _report(results, table, unsure_below, resting, adopted, rule, photos, folds) -> str:
    n_persons = len(set(photos.persons))
    lines = [
        f"Held-out-persons folds: {FOLDS} folds of {', '.join(str(int((folds == f).sum())) for f in range(FOLDS))} "
        f"faces ({n_persons} persons, none on both sides); the largest face of each picture, a picture without "
        "one counts as wrong; learnt rules are fitted on four folds and scored on the fifth.",
        "",
        "| reading | accuracy | balanced accuracy | folds: accuracy min-max | " + " | ".join(EMOTIONS) + " | no face |",
        "|---|---|---|---|" + "---|" * len(EMOTIONS) + "---|",
    ]
    for name, r in results.items():
        a, accs = r["all"], [f["accuracy"] for f in r["folds"]]
        mark = "**" if name == adopted else ""
        lines.append(
            f"| {mark}{name}{mark} | {_pct(a['accuracy'])} | {_pct(a['balanced_accuracy'])} | "
            f"{_pct(min(accs))}-{_pct(max(accs))} | "
            + " | ".join(_pct(a["recall"][e]) for e in EMOTIONS)
            + f" | {a['no_face']} |"
        )
    confusion = results[adopted]["all"]["confusion"]
    lines += ["", f"Confusion of the adopted reading (rows true, columns predicted, {', '.join(EMOTIONS)}):", ""]
    lines += ["| true \\ predicted | " + " | ".join(EMOTIONS) + " |", "|---|" + "---|" * len(EMOTIONS)]
    lines += [f"| {e} | " + " | ".join(str(v) for v in row) + " |" for e, row in zip(EMOTIONS, confusion)]
    lines += ["", "Selective accuracy of the adopted reading (held-out folds):", ""]
    lines += ["| unsure below | share labelled | accuracy among labelled |", "|---|---|---|"]
    lines += [
        f"| {r['unsure_below']:.2f}{' (shipped)' if r['unsure_below'] == unsure_below else ''} | "
        f"{_pct(r['labelled'])} | {_pct(r['accuracy_labelled'])} |"
        for r in table
    ]
    lines += ["", f"Resting-face correction on the {resting[0]['faces']} faces whose person has other pictures:", ""]
    lines += ["| history prior (faces) | accuracy | balanced accuracy |", "|---|---|---|"]
    lines += [
        f"| {'none' if r['prior'] is None else r['prior']} | {_pct(r['accuracy'])} | {_pct(r['balanced_accuracy'])} |"
        for r in resting
    ]
    c = rule["check"]
    lines += [
        "",
        f"Fixed check subset (every {CHECK_EVERY}th picture, {len(c['files'])} pictures), the shipped rule "
        f"fitted on all faces: {c['correct']} of {len(c['files'])} right.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fercam.training.fit_combiner", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="a folder with labels.csv (file,label,person) and the pictures")
    parser.add_argument("--out", default="models/fer_combiner.json", help="the rule file to write")
    parser.add_argument("--cache", default="runs/wild_cache", help="folder for the per-face model outputs")
    parser.add_argument("--classifier", help="our model file (default: the shipped fer_cnn.tflite)")
    args = parser.parse_args(argv)
    try:
        run(Path(args.data), Path(args.out), Path(args.cache), Path(args.classifier) if args.classifier else None)
    except (ValueError, OSError) as exc:
        print(f"fit_combiner: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
