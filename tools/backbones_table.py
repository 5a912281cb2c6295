"""results.json of tools/gpu_backbones.py -> the markdown tables of docs/BACKBONES.md.

python3 tools/backbones_table.py $OUT/results.json
"""

from __future__ import annotations

import json
import sys

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def pct(value: float) -> str:
    return f"{value:.1%}"


def row(name: str, r: dict) -> str:
    pub = r["public"]
    cells = [
        name,
        f"{r.get('params_m', 1.17):.2f}",
        str(r.get("input_px", 48)),
        f"{r['epochs']:g}",
        f"{r['images_per_s']:,}",
        f"{r['train_seconds']:.0f}",
        f"**{pct(pub['accuracy'])}** ({pct(r['public_single_pass_accuracy'])})",
        f"{pub['macro_f1']:.3f}",
        *(pct(pub["recall"][e]) for e in EMOTIONS),
        pct(r["val_accuracy"]),
        pct(r["wild"]["accuracy"]),
    ]
    return "| " + " | ".join(cells) + " |"


def main(path: str) -> None:
    results = json.loads(open(path).read())
    print(
        f"Device: {results['device']}, torch {results['torch']}; {results['budget_s_each']:.0f} s of training each "
        f"({results['fit_rows']} fit rows, {results['val_rows']} validation rows held out); "
        f"run {results['elapsed_s']:.0f} s.\n"
    )
    header = ["network", "params (M)", "px", "epochs", "images/s", "train s", "public test (one pass)", "macro F1"]
    header += [*EMOTIONS, "validation", "wild_faces_dev"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for name, r in results["networks"].items():
        print(row(name, r))
    if "student" in results:
        print(row("fernet, distilled", results["student"]))
    teacher = results.get("teacher")
    if teacher:
        pub = teacher["public"]
        recalls = " ".join(f"{e} {pct(pub['recall'][e])}" for e in EMOTIONS)
        print(
            f"\nTeacher (mean of {', '.join(teacher['members'])}, chosen on {teacher['selected_by']}): public "
            f"{pct(pub['accuracy'])}, macro F1 {pub['macro_f1']:.3f}, validation {pct(teacher['val_accuracy'])}, "
            f"wild_faces_dev {pct(teacher['wild']['accuracy'])}; recall {recalls}."
        )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "results.json")
