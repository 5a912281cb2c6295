"""Train and evaluate the voice-emotion MLP on EmoDB + SAVEE, speaker-independently.

`python -m fercam.training.voice_train --out DIR` runs leave-one-speaker-out cross-validation
(14 folds: each of the 10 EmoDB and 4 SAVEE speakers is held out once), then trains the shipped
model on all speakers and exports `voice_mlp.tflite` with its feature statistics `voice_mlp.json`.
The run folder gets `metrics.json`, `model.keras`, the `.tflite` and the `.json`.

Features are computed once (numpy, `fercam.voice.voice_features`), on every 2 s window of every
clip (0.5 s hop). The model is trained on each window three times: standardised with its
speaker's statistics, with its clip's own (shrunk towards the training speakers' average), and
with the average alone; a context input says which (`fercam.voice.FeatureNorm`). A held-out
speaker is scored the same three ways, never with their labels:

- `speaker`: standardised with the statistics of all their clips (speaker normalisation, the
  setting of published speaker-independent results, and what `voice_timeline` does for a
  one-speaker recording);
- `clip`: each clip standardised on its own windows (`predict_clips(..., norm="clip")`, or one
  short recording);
- `population`: only the training speakers' average (a single window heard without context).
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.training.data import DataError
from fercam.types import EMOTIONS
from fercam.voice.features import N_FEATURES, FeatureNorm, clip_windows, norm_file, voice_features

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech"
CORPORA = ("emodb", "savee")
MODEL_NAME = "voice_mlp"
PRIOR_WINDOWS = 8.0  # how many windows the training speakers' average weighs in a recording's statistics
SCENARIOS = ("speaker", "clip", "population")
# For --folds N < 14: EmoDB speakers alternate male/female so that a fold holds out one of each.
SPEAKER_ORDER = {
    "emodb": ("03", "08", "10", "09", "11", "13", "12", "14", "15", "16"),
    "savee": ("DC", "JE", "JK", "KL"),
}


class ExportError(RuntimeError):
    """The LiteRT model does not reproduce the Keras model."""


@dataclass(frozen=True)
class SpeechData:
    """Labelled 16 kHz int16 clips from both corpora; EmoDB boredom (no face class) is dropped."""

    clips: list[np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray
    corpus: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def voices(self) -> np.ndarray:
        """A unique id per speaker across corpora, e.g. 'savee:KL'."""
        return np.char.add(np.char.add(self.corpus.astype(str), ":"), self.speakers.astype(str))


def speech_dir(data_dir: str | Path) -> Path:
    """The folder holding emodb.npz and savee.npz: `data_dir` itself, or the folder of one of them."""
    path = Path(data_dir)
    if path.is_file() and path.name in {f"{name}.npz" for name in CORPORA}:
        path = path.parent
    missing = [f"{name}.npz" for name in CORPORA if not (path / f"{name}.npz").is_file()]
    if missing:
        raise DataError(
            f"{data_dir}: not the speech-data folder (no {' or '.join(missing)} there); "
            f"voice training needs the folder with emodb.npz and savee.npz, e.g. --data {DATA_DIR}"
        )
    return path


def load_speech(data_dir: str | Path = DATA_DIR) -> SpeechData:
    folder = speech_dir(data_dir)
    clips, labels, speakers, corpus = [], [], [], []
    for name in CORPORA:
        with np.load(folder / f"{name}.npz") as npz:
            audio, offsets, y, spk = npz["audio"], npz["offsets"], npz["labels"], npz["speakers"]
        keep = np.flatnonzero(y >= 0)
        clips += [audio[offsets[i] : offsets[i + 1]] for i in keep]
        labels.append(y[keep].astype(np.int64))
        speakers.append(spk[keep].astype(str))
        corpus.append(np.full(len(keep), name))
    return SpeechData(clips, np.concatenate(labels), np.concatenate(speakers), np.concatenate(corpus))


def speaker_folds(data: SpeechData, folds: int = 0) -> np.ndarray:
    """Fold id per clip. `folds=0`: leave-one-speaker-out (14 folds, one per speaker); otherwise a
    corpus's j-th speaker goes to fold j % folds. Either way folds never share a speaker."""
    fold = np.empty(len(data), np.int64)
    number = 0
    for name, order in SPEAKER_ORDER.items():
        for j, speaker in enumerate(order):
            fold[(data.corpus == name) & (data.speakers == speaker)] = number if folds == 0 else j % folds
            number += 1
    return fold


@dataclass(frozen=True)
class WindowTable:
    """Raw features of every 2 s window of every clip, and the clip each came from."""

    features: np.ndarray
    clip: np.ndarray


def window_table(data: SpeechData) -> WindowTable:
    started = time.time()
    windows, owner = [], []
    for i, clip in enumerate(data.clips):
        pieces = clip_windows(clip.astype(np.float32) / 32768.0)
        windows += pieces
        owner += [i] * len(pieces)
    table = WindowTable(voice_features(windows), np.array(owner))
    log.info("features of %d windows in %.0f s", len(owner), time.time() - started)
    return table


def population_norm(features: np.ndarray, groups: np.ndarray, prior_windows: float = PRIOR_WINDOWS) -> FeatureNorm:
    """The average voice of `groups` (speakers): mean of their means, root mean of their variances."""
    means, variances = [], []
    for group in np.unique(groups):
        rows = features[groups == group]
        means.append(np.nanmean(rows, axis=0))
        variances.append(np.nanvar(rows, axis=0))
    mean, var = np.nanmean(means, axis=0), np.nanmean(variances, axis=0)
    return FeatureNorm(np.nan_to_num(mean), np.sqrt(np.nan_to_num(var, nan=1.0)) + 1e-6, prior_windows)


def normalise_groups(norm: FeatureNorm, features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """Standardise each group's rows (a speaker, a clip) with that group's own shrunk statistics."""
    out = np.empty((len(features), features.shape[1] + 1), np.float32)
    for group in np.unique(groups):
        rows = groups == group
        out[rows] = norm.apply(features[rows])
    return out


def training_inputs(
    norm: FeatureNorm, features: np.ndarray, voices: np.ndarray, clips: np.ndarray, labels: np.ndarray, mix: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Standardised training windows and their labels: each speaker with its own statistics and,
    with `mix`, the same windows twice more, standardised as a lone clip and with the prior only,
    so that the model also copes before it has heard much of a voice."""
    inputs = [normalise_groups(norm, features, voices)]
    if mix:
        inputs += [normalise_groups(norm, features, clips), norm.apply(features, norm.prior())]
    return np.concatenate(inputs), np.tile(labels, len(inputs))


def class_weights(labels: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-sample loss weights (n_max / n_class) ** power, mean 1: rare classes count more."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = (counts.max() / np.maximum(counts, 1)) ** power
    return (weights[labels] / weights[labels].mean()).astype(np.float32)


def build_mlp(keras, *, hidden: int = 256, dropout: float = 0.5, l2: float = 1e-3, noise: float = 0.3):
    """299 standardised features + context -> 7 probabilities: noise and dropout, one hidden ReLU layer."""
    layers, regular = keras.layers, keras.regularizers.l2(l2)
    inputs = keras.Input((N_FEATURES + 1,), name="features")
    x = layers.Dropout(0.1)(layers.GaussianNoise(noise)(inputs[:, :N_FEATURES]))
    x = layers.Concatenate()([x, inputs[:, N_FEATURES:]])  # the context is neither noised nor dropped
    x = layers.Dense(hidden, activation="relu", kernel_regularizer=regular)(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", kernel_regularizer=regular, name="emotion")(x)
    return keras.Model(inputs, outputs, name="voice_mlp")


def fit(keras, features: np.ndarray, labels: np.ndarray, *, epochs: int, seed: int, members: int = 1):
    """Train `members` MLPs (seeds seed, seed+1, ...) and average them into one model."""
    models = []
    for member in range(members):
        keras.utils.set_random_seed(seed + member)
        model = build_mlp(keras)
        model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
        model.fit(features, labels, sample_weight=class_weights(labels), epochs=epochs, batch_size=64, verbose=0)
        models.append(model)
    if members == 1:
        return models[0]
    inputs = keras.Input((N_FEATURES + 1,), name="features")
    outputs = keras.layers.Average(name="emotion")([m(inputs) for m in models])
    return keras.Model(inputs, outputs, name="voice_mlp_ensemble")


def clip_means(window_probs: np.ndarray, clip: np.ndarray, clips: int) -> np.ndarray:
    """(clips, 7): the mean of each clip's window probabilities."""
    total = np.zeros((clips, len(EMOTIONS)))
    np.add.at(total, clip, window_probs)
    return total / np.maximum(np.bincount(clip, minlength=clips), 1)[:, None]


def corpus_metrics(probs: np.ndarray, data: SpeechData) -> dict:
    """Accuracy, unweighted average recall, per-class recall, confusion and per-speaker accuracy per corpus."""
    pred = probs.argmax(axis=1)
    report = {}
    for name in CORPORA:
        mask = data.corpus == name
        recall = {
            EMOTIONS[c]: round(float(np.mean(pred[mask & (data.labels == c)] == c)), 4)
            for c in np.unique(data.labels[mask])
        }
        confusion = np.zeros((len(EMOTIONS), len(EMOTIONS)), np.int64)
        np.add.at(confusion, (data.labels[mask], pred[mask]), 1)
        speakers = {
            str(s): round(
                float(np.mean(pred[mask & (data.speakers == s)] == data.labels[mask & (data.speakers == s)])), 4
            )
            for s in SPEAKER_ORDER[name]
        }
        report[name] = {
            "clips": int(mask.sum()),
            "accuracy": round(float(np.mean(pred[mask] == data.labels[mask])), 4),
            "uar": round(float(np.mean(list(recall.values()))), 4),
            "recall": recall,
            "per_speaker_accuracy": speakers,
            "confusion": confusion.tolist(),
        }
    return report


def cross_validate(
    keras, data: SpeechData, table: WindowTable, *, folds: int, epochs: int, seed: int, members: int, mix: bool
) -> dict:
    """Leave speakers out: each fold trains without its speakers, then scores only their clips."""
    fold = speaker_folds(data, folds)
    voices, labels = data.voices[table.clip], data.labels[table.clip]
    window_fold = fold[table.clip]
    probs = {s: np.zeros((len(table.clip), len(EMOTIONS)), np.float32) for s in SCENARIOS}
    per_fold = []
    for k in np.unique(fold):
        started, train, test = time.time(), window_fold != k, window_fold == k
        norm = population_norm(table.features[train], voices[train])
        inputs, targets = training_inputs(
            norm, table.features[train], voices[train], table.clip[train], labels[train], mix
        )
        model = fit(keras, inputs, targets, epochs=epochs, seed=seed + int(k), members=members)
        held_out = table.features[test]
        inputs = {
            "speaker": normalise_groups(norm, held_out, voices[test]),
            "clip": normalise_groups(norm, held_out, table.clip[test]),
            "population": norm.apply(held_out, norm.prior()),
        }
        for scenario, z in inputs.items():
            probs[scenario][test] = model.predict(z, batch_size=1024, verbose=0)
        clips = np.unique(table.clip[test])
        speaker_pred = clip_means(probs["speaker"], table.clip, len(data))[clips].argmax(axis=1)
        accuracy = round(float(np.mean(speaker_pred == data.labels[clips])), 4)
        per_fold.append(
            {"held_out": sorted(str(v) for v in set(data.voices[clips])), "accuracy_speaker_norm": accuracy}
        )
        log.info("fold %s: accuracy %.3f (%.0f s)", per_fold[-1]["held_out"], accuracy, time.time() - started)
    scheme = "leave-one-speaker-out (14 folds)" if folds == 0 else f"{folds} speaker-group folds"
    return {
        "scheme": scheme,
        "per_fold": per_fold,
        "scenarios": {s: corpus_metrics(clip_means(p, table.clip, len(data)), data) for s, p in probs.items()},
    }


def export_litert(model, norm: FeatureNorm, path: Path, check: np.ndarray, tolerance: float = 1e-4) -> Path:
    """Keras -> SavedModel -> LiteRT (+ the feature statistics beside it); prove both models agree on `check`."""
    import tensorflow as tf

    from fercam.voice.classifier import VoiceClassifier

    path = Path(path)
    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        path.write_bytes(tf.lite.TFLiteConverter.from_saved_model(tmp).convert())
    norm_file(path).write_text(json.dumps(norm.to_json()))
    classifier = VoiceClassifier(path)
    error = float(np.abs(model.predict(norm.apply(check), verbose=0) - classifier.predict_features(check)).max())
    if error > tolerance:
        raise ExportError(f"LiteRT and Keras disagree by {error:.6f} (> {tolerance}) on {path}")
    log.info("exported %s (%.0f kB), max |LiteRT - Keras| = %.2e", path, path.stat().st_size / 1024, error)
    return path


def train_voice(
    out_dir: str | Path,
    *,
    data_dir: str | Path = DATA_DIR,
    epochs: int = 20,
    seed: int = 7,
    folds: int = 0,
    members: int = 1,
    mix: bool = True,
    cross_validation: bool = True,
) -> dict:
    """Cross-validate (leave-one-speaker-out unless `folds` > 0), then fit all speakers and export."""
    from fercam.training import require_tensorflow

    data = load_speech(data_dir)  # first: a wrong --data fails before the slow TensorFlow import
    keras = require_tensorflow()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = window_table(data)
    config = {"epochs": epochs, "seed": seed, "folds": folds, "members": members, "mix": mix, "clips": len(data)}
    config.update({"windows": len(table.clip), "prior_windows": PRIOR_WINDOWS})
    metrics: dict = {"config": config}
    if cross_validation:
        metrics["cross_validation"] = cross_validate(
            keras, data, table, folds=folds, epochs=epochs, seed=seed, members=members, mix=mix
        )
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    voices, labels = data.voices[table.clip], data.labels[table.clip]
    norm = population_norm(table.features, voices)
    inputs, targets = training_inputs(norm, table.features, voices, table.clip, labels, mix)
    model = fit(keras, inputs, targets, epochs=epochs, seed=seed, members=members)
    model.save(out_dir / "model.keras")
    export_litert(model, norm, out_dir / f"{MODEL_NAME}.tflite", table.features[::16])
    metrics["training_fit"] = evaluate_voice(out_dir / f"{MODEL_NAME}.tflite", data_dir=data_dir, data=data)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def evaluate_voice(model_path: str | Path, *, data_dir: str | Path = DATA_DIR, data: SpeechData | None = None) -> dict:
    """Per-corpus accuracy, UAR and recall of a `.tflite` voice model on every labelled clip.

    Each speaker's clips go through `predict_clips` together (speaker normalisation). The shipped
    model saw all these speakers, so this is a training fit, not a held-out score.
    """
    from fercam.voice.classifier import load_voice_classifier

    data = load_speech(data_dir) if data is None else data
    classifier = load_voice_classifier(model_path)
    probs = np.zeros((len(data), len(EMOTIONS)))
    for voice in np.unique(data.voices):
        index = np.flatnonzero(data.voices == voice)
        probs[index] = classifier.predict_clips([data.clips[i] for i in index], 16000)
    return corpus_metrics(probs, data)


def summary(metrics: dict) -> dict:
    """accuracy / UAR per corpus for the console: the held-out scores when there are any."""
    scenarios = metrics.get("cross_validation", {}).get("scenarios")
    if scenarios:
        return {s: {c: (m[c]["accuracy"], m[c]["uar"]) for c in CORPORA} for s, m in scenarios.items()}
    fit_scores = metrics.get("training_fit", metrics)
    return {c: (fit_scores[c]["accuracy"], fit_scores[c]["uar"]) for c in CORPORA if c in fit_scores}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run folder (keep it outside the repository)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder with savee.npz and emodb.npz")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the (3x mixed) windows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--members", type=int, default=1, help="MLPs averaged into the model")
    parser.add_argument("--folds", type=int, default=0, help="0 = leave-one-speaker-out; N = speaker-group folds")
    parser.add_argument("--no-mix", action="store_true", help="train on speaker-standardised windows only")
    parser.add_argument("--no-cv", action="store_true", help="skip cross-validation, only train and export")
    parser.add_argument("--evaluate", type=Path, metavar="TFLITE", help="only score this model on all clips")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.evaluate:
        result = evaluate_voice(args.evaluate, data_dir=args.data_dir)
    elif args.out:
        result = train_voice(
            args.out,
            data_dir=args.data_dir,
            epochs=args.epochs,
            seed=args.seed,
            folds=args.folds,
            members=args.members,
            mix=not args.no_mix,
            cross_validation=not args.no_cv,
        )
    else:
        parser.error("give --out DIR to train, or --evaluate MODEL")
    log.info("accuracy, UAR: %s", json.dumps(summary(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
