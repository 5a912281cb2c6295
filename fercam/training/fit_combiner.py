"""Fit the combination rule on labelled photo folders, and say honestly how well it reads faces it never saw.

    python -m fercam.training.fit_combiner --data ../shared/data/wild_faces_dev --data ../shared/data/sfew_train

One command, reproducible (deterministic folds, a closed-form fitter): re-run it after replacing
`models/fer_cnn.tflite`. Per-face model outputs are cached under `--cache` by the models' contents.

Every choice the rule makes (its inputs, the YuNet fallback, the L2 penalty, the class balance, then the logit
adjustment's tau by `--tau-rule`) is taken by `choose`, on inner folds of the faces it is given. The nested
estimate runs `choose` and the fit inside each outer fold and scores the fold it never saw: persons (or films)
held out, no decision taken on them. The in-sample figure (the best candidate's cross-validated score, chosen
on the same folds it is scored on) is printed beside it: the difference is what the choosing flattered. With
two folders, each is also scored by the rule the same code fits on the other one alone (cross-set transfer).
The shipped rule is `choose` and the fit on all faces; its "unsure" threshold is read off the nested estimate.

This module is the command: it runs the estimate and the choice (`fercam.training.nested`, on the candidates
of `fercam.training.combiner_rule`), writes models/fer_combiner.json and prints the report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from fercam.second_opinion import softmax
from fercam.training.combiner_rule import INPUTS, Faces, Rule, fit_rule, load_faces
from fercam.training.nested import (
    FOLDS,
    TAU_RULES,
    by_set,
    choose,
    choose_unsure,
    criterion,
    nested,
    selective,
    transfer,
)
from fercam.training.wild import scored
from fercam.types import EMOTIONS

CHECK_EVERY = 15  # the fixed subset the tests re-score with the shipped files: every 15th picture


def run(
    folders: list[Path],
    out: Path,
    cache: Path,
    classifier: Path | None = None,
    tau_rule: str = "accuracy-window",
    log=print,
) -> dict:
    faces = load_faces(folders, cache, classifier, log)
    log(f"{len(faces.y)} faces from {len(folders)} folders; nested estimate ({FOLDS} x {FOLDS} folds)")
    estimate = nested(faces, tau_rule=tau_rule, log=log)
    nested_scores = by_set(faces, estimate["probs"], estimate["found"])
    recipe, tau, inner = choose(faces, tau_rule=tau_rule)
    rule = fit_rule(recipe, faces, tau)
    in_sample = by_set(faces, softmax(inner["logits"]), faces.found(recipe.fallback))
    fitted = by_set(faces, softmax(rule.logits(faces)), faces.found(recipe.fallback))
    candidates = {}  # each candidate's in-sample score at its best options, as the old report gave it
    for r, s in inner["table"].items():
        if r.name not in candidates or criterion(s) > criterion(inner["table"][candidates[r.name]]):
            candidates[r.name] = r
    names = list(dict.fromkeys(faces.sets))
    transfers = {}
    if len(names) == 2:
        part = {name: faces.take(faces.sets == name) for name in names}
        own = {}  # each folder's nested estimate on its own faces: what the transfer into it is held against
        for name, p in part.items():
            estimate_alone = nested(p, tau_rule=tau_rule, log=lambda _: None)
            own[name] = scored(estimate_alone["probs"], estimate_alone["found"], p.y)
        for a, b in (names, names[::-1]):
            log(f"  transfer: fitting on {a}, scoring {b}")
            chosen, chosen_tau, score = transfer(part[a], part[b], tau_rule=tau_rule)
            recipe_name = f"{chosen.name}, tau {chosen_tau}"
            transfers[f"{a} -> {b}"] = {"recipe": recipe_name, "score": score, "nested_on_target": own[b]}
    table = selective(estimate["probs"], estimate["found"], faces.y)
    unsure_below = choose_unsure(table)
    shipped = _rule_file(rule, faces, folders, unsure_below, nested_scores, in_sample, tau_rule)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dump(shipped))
    report = {
        "nested": nested_scores,
        "in_sample": in_sample,
        "resubstitution": fitted,
        "chosen": (recipe, tau),
        "taus": inner["taus"],
        "tau_rule": tau_rule,
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


def _rule_file(rule: Rule, faces: Faces, folders, unsure_below, nested_scores, in_sample, tau_rule) -> dict:
    r = rule.recipe
    check = np.arange(0, len(faces.y), CHECK_EVERY)
    check = check[faces.sets[check] == faces.sets[0]]  # the first folder's pictures (the tests read them)
    found = faces.found(r.fallback)
    pred = np.where(found, rule.logits(faces).argmax(1), -1)[check]

    def brief(s):
        keys = ("samples", "accuracy", "balanced_accuracy", "recall")
        return {name: {k: v[k] for k in keys} for name, v in s.items()}

    return {
        "about": "fercam combined reading: softmax(weights @ inputs + bias - tau * log class_share); models/README.md",
        "inputs": list(INPUTS[r.inputs]),
        "weights": np.round(rule.weights, 6).tolist(),
        "bias": np.round(rule.bias, 6).tolist(),
        "tau": rule.tau,
        "class_share": np.round(rule.class_share, 6).tolist(),
        "unsure_below": unsure_below,
        "fallback_detector": "yunet" if r.fallback else None,
        "fitted_on": {
            "data": [Path(f).name for f in folders],  # the folders' names: `fercam evaluate` knows them by name
            "faces": int(found.sum()),
            "recipe": r.name,
            "l2": r.l2,
            "balance": r.balance,
            "tau_rule": tau_rule,
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
        f"each, the inputs, fallback, L2, class balance and tau are chosen on {FOLDS} inner folds of the other four. "
        "The largest face of each picture; a picture without one counts as wrong.",
        "",
        *head,
    ]
    for figure, title in (("nested", "nested (held out, every choice inside)"), ("in_sample", "in-sample")):
        for name, s in report[figure].items():
            lines.append(_row(f"{title}: {name}", s))
    lines.append(_row("fitted rule on its own faces: all", report["resubstitution"]["all"]))
    choices = [f"{r.name} (l2 {r.l2}, balance {r.balance}, tau {t})" for r, t in report["outer_choices"]]
    r, tau = report["chosen"]
    lines += ["", f"Chosen in the outer folds (tau by {report['tau_rule']}): " + "; ".join(choices) + ".", ""]
    lines += [f"Shipped (chosen on all faces): **{r.name}**, l2 {r.l2}, balance {r.balance}, **tau {tau}**.", ""]
    lines += ["Its logit adjustment, inner folds of all faces (the in-sample figures for each tau):", "", *head]
    lines += [_row(f"tau {t}{' (shipped)' if t == tau else ''}", s) for t, s in report["taus"].items()]
    lines += [""]
    lines += ["Candidates, in-sample (each at its best options, chosen on the folds it is scored on):", "", *head]
    lines += [_row(name, s) for name, s in report["candidates"].items()]
    if report["transfer"]:
        title = "Cross-set transfer (chosen and fitted on one folder alone, scored on the other, beside its own nested"
        lines += ["", title + " estimate):", "", *head]
        for pair, t in report["transfer"].items():
            target, own, score = pair.split(" -> ")[1], t["nested_on_target"], t["score"]
            lines.append(_row(f"nested on {target} alone (its own held-out folds)", own))
            lines.append(_row(f"{pair} ({t['recipe']})", score))
            gap = [100 * (own[k] - score[k]) for k in ("accuracy", "balanced_accuracy")]
            lines.append(f"| estimate minus transfer | {gap[0]:+.1f} | {gap[1]:+.1f} |" + " |" * (len(EMOTIONS) + 1))
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
    parser.add_argument(
        "--tau-rule",
        choices=sorted(TAU_RULES),
        default="accuracy-window",
        help="how the logit adjustment's tau is chosen on inner folds: the best balanced accuracy within a point "
        "of the best accuracy (default), or the smallest tau giving every class 25%% recall",
    )
    args = parser.parse_args(argv)
    try:
        run(
            [Path(d) for d in args.data],
            Path(args.out),
            Path(args.cache),
            Path(args.classifier) if args.classifier else None,
            args.tau_rule,
        )
    except (ValueError, OSError) as exc:
        print(f"fit_combiner: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
