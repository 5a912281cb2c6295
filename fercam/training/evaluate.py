"""`fercam evaluate`: accuracy, per-class precision/recall, confusion matrix and bar chart."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fercam.types import EMOTIONS


def evaluate_probs(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Metrics of predicted probabilities against integer labels, as plain JSON-able values."""
    pred = np.argmax(probs, axis=1)
    k = len(EMOTIONS)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    tp = np.diag(confusion).astype(float)
    precision = np.divide(tp, confusion.sum(0), out=np.zeros(k), where=confusion.sum(0) > 0)
    recall = np.divide(tp, confusion.sum(1), out=np.zeros(k), where=confusion.sum(1) > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(k), where=precision + recall > 0)
    return {
        "samples": int(len(labels)),
        "accuracy": round(float((pred == labels).mean()), 4),
        "macro_f1": round(float(f1.mean()), 4),
        "per_class": {
            name: {"precision": round(p, 4), "recall": round(r, 4), "f1": round(f, 4), "support": int(s)}
            for name, p, r, f, s in zip(EMOTIONS, precision, recall, f1, confusion.sum(1))
        },
        "confusion": confusion.tolist(),
    }


def predict(classifier, faces: np.ndarray, *, batch: int = 512) -> np.ndarray:
    """Probabilities for all faces, in chunks."""
    chunks = [classifier.predict_faces(faces[i : i + batch]) for i in range(0, len(faces), batch)]
    return np.concatenate(chunks) if chunks else np.zeros((0, len(EMOTIONS)), np.float32)


def evaluate_model(
    model: str | Path, data: str | Path, *, out: str | Path, mirror: bool = True, limit: int = 0
) -> dict:
    from fercam.emotion import load_classifier
    from fercam.training.data import load_splits

    test = load_splits(data).test
    faces, labels = (test.x[:limit], test.y[:limit]) if limit else (test.x, test.y)
    metrics = evaluate_probs(predict(load_classifier(model, views="both" if mirror else "single"), faces), labels)
    metrics.update(model=str(model), data=str(data), mirror=mirror)
    write_report(metrics, Path(out))
    return metrics


def write_report(metrics: dict, out: Path) -> None:
    """metrics.json, confusion.png (row-normalised) and per_class.png in `out`."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    _plot_confusion(np.array(metrics["confusion"]), out / "confusion.png")
    _plot_per_class(metrics["per_class"], out / "per_class.png")


def _plot_confusion(confusion: np.ndarray, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    share = confusion / np.maximum(confusion.sum(1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set(xticks=range(len(EMOTIONS)), yticks=range(len(EMOTIONS)), xticklabels=EMOTIONS, yticklabels=EMOTIONS)
    ax.set(xlabel="predicted", ylabel="true", title="Confusion matrix (share of each true class)")
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    for (i, j), value in np.ndenumerate(share):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="white" if value > 0.5 else "black", fontsize=8)
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _plot_per_class(per_class: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.arange(len(per_class))
    fig, ax = plt.subplots(figsize=(7, 4))
    for offset, key in ((-0.2, "precision"), (0.2, "recall")):
        ax.bar(x + offset, [m[key] for m in per_class.values()], width=0.4, label=key)
    ax.set(xticks=x, xticklabels=list(per_class), ylim=(0, 1), title="Per-class precision and recall")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
