"""How well the voice model does on people and corpora it never heard: splits, scores, calibration, plots.

Two protocols, both clip-level (a clip's probabilities are the mean over its 2 s windows):

- leave-one-speaker-out (`loso`): each speaker of each corpus is held out once; the model is
  trained on every other speaker of every corpus;
- leave-one-corpus-out (`loco`): each corpus is held out once; the model is trained on the others
  (the cross-corpus figure: a new language, microphone and set of actors).

Predictions are 7-way; UAR (unweighted average recall) is the mean recall over the classes a
corpus has (EmoDB: six, no surprise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.training.voice_data import SpeechData
from fercam.types import EMOTIONS


@dataclass(frozen=True)
class Split:
    """One fold: its protocol, what it holds out, and which clips that is."""

    protocol: str
    held_out: str
    test: np.ndarray  # bool per clip


def speaker_groups(speakers: list[str], groups: int) -> list[list[str]]:
    """`groups` = 0: one speaker each; otherwise speakers dealt round-robin into that many groups."""
    if groups <= 0 or groups >= len(speakers):
        return [[s] for s in speakers]
    return [speakers[g::groups] for g in range(groups)]


def splits(data: SpeechData, protocols: tuple[str, ...] = ("loso", "loco"), groups: int = 0) -> list[Split]:
    """The folds of each protocol; `groups` > 0 holds out that many speaker groups per corpus instead of one each."""
    out = []
    for corpus in data.corpora:
        in_corpus = data.corpus == corpus
        if "loso" in protocols:
            for group in speaker_groups(sorted(set(data.speakers[in_corpus])), groups):
                out.append(Split("loso", f"{corpus}:{'+'.join(group)}", in_corpus & np.isin(data.speakers, group)))
        if "loco" in protocols and len(data.corpora) > 1:
            out.append(Split("loco", corpus, in_corpus))
    return out


def scores(probs: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, UAR, per-class recall and the confusion matrix (rows = truth) of clip probabilities."""
    pred = probs.argmax(axis=1)
    recall = {EMOTIONS[c]: round(float(np.mean(pred[labels == c] == c)), 4) for c in np.unique(labels)}
    confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    return {
        "clips": int(len(labels)),
        "accuracy": round(float(np.mean(pred == labels)), 4),
        "uar": round(float(np.mean(list(recall.values()))), 4),
        "recall": recall,
        "confusion": confusion.tolist(),
    }


def corpus_scores(probs: np.ndarray, data: SpeechData, scored: np.ndarray) -> dict:
    """`scores` per corpus over the clips marked `scored`, with per-speaker accuracy."""
    pred = probs.argmax(axis=1)
    report = {}
    for corpus in data.corpora:
        mask = scored & (data.corpus == corpus)
        if not mask.any():
            continue
        report[corpus] = scores(probs[mask], data.labels[mask])
        report[corpus]["per_speaker_accuracy"] = {
            str(s): round(
                float(np.mean(pred[mask & (data.speakers == s)] == data.labels[mask & (data.speakers == s)])), 4
            )
            for s in sorted(set(data.speakers[mask]))
        }
    return report


def fit_temperature(log_probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(log_probs / T) (grid, then refined)."""

    def nll(t: float) -> float:
        z = log_probs / t
        z = z - z.max(axis=1, keepdims=True)
        return float(np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(labels)), labels]))

    grid = np.exp(np.linspace(np.log(0.25), np.log(8.0), 61))
    best = grid[np.argmin([nll(t) for t in grid])]
    fine = best * np.exp(np.linspace(-0.06, 0.06, 25))
    return float(fine[np.argmin([nll(t) for t in fine])])


def confidence_threshold(confidence: np.ndarray, correct: np.ndarray, precision: float = 0.6) -> float:
    """The lowest confidence above which held-out windows are right at least `precision` of the time.

    Below it the app says "unsure": a named emotion is then right about `precision` of the time or
    more on unseen speakers (measured on the calibration windows, see the model card).
    """
    order = np.argsort(-confidence)
    running = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= precision)
    return float(confidence[order][ok[-1]]) if len(ok) else 1.0


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by their size."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == labels
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    gaps = [abs(correct[which == b].mean() - confidence[which == b].mean()) * np.mean(which == b) for b in range(bins)]
    return round(float(np.nansum(gaps)), 4)


def plot_confusion(confusion: list[list[int]], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix (rows = truth) as a PNG, counts in the cells."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = np.asarray(confusion, float)
    rows = counts.sum(axis=1, keepdims=True)
    present = rows[:, 0] > 0
    share = np.where(rows > 0, counts / np.maximum(rows, 1), np.nan)[present]
    fig, ax = plt.subplots(figsize=(6, 0.6 * present.sum() + 1.8))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), value in np.ndenumerate(counts[present]):
        ax.text(j, i, int(value), ha="center", va="center", color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(EMOTIONS)), EMOTIONS, rotation=45, ha="right")
    ax.set_yticks(range(int(present.sum())), [e for e, p in zip(EMOTIONS, present) if p])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def evaluate_voice(
    model_path: str | Path, *, data_dir: str | Path | None = None, data: SpeechData | None = None
) -> dict:
    """Per-corpus accuracy, UAR and recall of a `.tflite` voice model on every labelled clip.

    Each speaker's clips go through `predict_clips` together (speaker normalisation). The shipped
    model saw all these speakers, so this is a training fit, not a held-out score.
    """
    from fercam.training.voice_data import DATA_DIR, load_speech
    from fercam.voice.classifier import load_voice_classifier

    data = load_speech(data_dir or DATA_DIR) if data is None else data
    classifier = load_voice_classifier(model_path)
    probs = np.zeros((len(data), len(EMOTIONS)))
    for voice in np.unique(data.voices):
        index = np.flatnonzero(data.voices == voice)
        probs[index] = classifier.predict_clips([data.clips[i] for i in index], 16000)
    return corpus_scores(probs, data, np.ones(len(data), bool))
