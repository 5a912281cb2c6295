"""Train and evaluate the voice-emotion CNN on SAVEE + EmoDB, speaker-independently.

`python -m fercam.training.voice_train --out DIR` runs leave-speakers-out cross-validation
(every speaker is held out once), then trains the shipped model on all speakers and exports
`voice_cnn.tflite`. The run folder gets `metrics.json`, `model.keras` and the `.tflite`.
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

from fercam.types import EMOTIONS
from fercam.voice import N_FRAMES, N_MELS, WINDOW_SAMPLES, clip_probs, fit_window, log_mel

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech"
CORPORA = ("emodb", "savee")
# EmoDB speakers alternate male/female so that every fold holds out one of each.
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


def load_speech(data_dir: str | Path = DATA_DIR) -> SpeechData:
    clips, labels, speakers, corpus = [], [], [], []
    for name in CORPORA:
        path = Path(data_dir) / f"{name}.npz"
        if not path.is_file():
            raise FileNotFoundError(f"speech corpus not found: {path}")
        with np.load(path) as npz:
            audio, offsets, y, spk = npz["audio"], npz["offsets"], npz["labels"], npz["speakers"]
        keep = np.flatnonzero(y >= 0)
        clips += [audio[offsets[i] : offsets[i + 1]] for i in keep]
        labels.append(y[keep].astype(np.int64))
        speakers.append(spk[keep].astype(str))
        corpus.append(np.full(len(keep), name))
    return SpeechData(clips, np.concatenate(labels), np.concatenate(speakers), np.concatenate(corpus))


def speaker_folds(data: SpeechData, folds: int) -> np.ndarray:
    """Fold id per clip: a corpus's j-th speaker goes to fold j % folds, so folds never share a speaker."""
    fold = np.empty(len(data), np.int64)
    for name, order in SPEAKER_ORDER.items():
        for j, speaker in enumerate(order):
            fold[(data.corpus == name) & (data.speakers == speaker)] = j % folds
    return fold


def augment_window(clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random 2 s piece of a clip with speed (0.92-1.08x), gain up to clipping, and noise (15-40 dB SNR)."""
    speed = rng.uniform(0.92, 1.08)
    need = int(WINDOW_SAMPLES * speed) + 1
    extra = len(clip) - need
    start = rng.integers(0, extra + 1) if extra > 0 else 0
    piece = clip[start : start + need].astype(np.float32) / 32768.0
    piece = np.interp(np.arange(0, len(piece) - 1, speed), np.arange(len(piece)), piece).astype(np.float32)
    piece *= 10 ** (rng.uniform(-20, 3) / 20) / max(float(np.abs(piece).max()), 1e-4)
    if rng.random() < 0.3:
        rms = float(np.sqrt(np.mean(piece**2))) + 1e-6
        piece += rng.standard_normal(len(piece), dtype=np.float32) * (rms * 10 ** (-rng.uniform(15, 40) / 20))
    piece = np.clip(piece, -1.0, 1.0)
    pad = WINDOW_SAMPLES - len(piece)
    return fit_window(piece, offset=int(rng.integers(0, pad + 1)) if pad > 0 else 0)


def spec_augment(features: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """SpecAugment: two time masks (<= 12 frames) and two mel masks (<= 8 bands) per window, in place."""
    for window in features:
        fill = window.mean()
        for _ in range(2):
            t, f = rng.integers(0, 13), rng.integers(0, 9)
            t0, f0 = rng.integers(0, N_FRAMES - t + 1), rng.integers(0, N_MELS - f + 1)
            window[t0 : t0 + t] = fill
            window[:, f0 : f0 + f] = fill
    return features


def epoch_features(data: SpeechData, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    windows = np.stack([augment_window(data.clips[i], rng) for i in index])
    return spec_augment(log_mel(windows), rng)


def class_weights(labels: np.ndarray, power: float = 0.5) -> np.ndarray:
    """Per-sample loss weights (n_max / n_class) ** power, mean 1: rare classes (surprise) count more."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = (counts.max() / np.maximum(counts, 1)) ** power
    return (weights[labels] / weights[labels].mean()).astype(np.float32)


def build_model(keras, steps: int, learning_rate: float = 2e-3):
    """~105k-parameter CNN: 4 conv blocks, mean over time, keep the 8 frequency bands, softmax."""
    layers = keras.layers
    inputs = keras.Input((N_FRAMES, N_MELS, 1), name="log_mel")
    x = inputs
    for i, channels in enumerate((16, 32, 64, 128)):
        x = layers.Conv2D(channels, 3, padding="same", use_bias=False)(x)
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.MaxPooling2D(2)(x) if i < 3 else x
    x = layers.AveragePooling2D((x.shape[1], 1))(x)  # mean over time; frequency position still matters
    x = layers.Dropout(0.3)(layers.Flatten()(x))
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", name="emotion")(x)
    model = keras.Model(inputs, outputs, name="voice_cnn")
    schedule = keras.optimizers.schedules.CosineDecay(learning_rate, steps, warmup_target=None)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=1e-3),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.05),
    )
    return model


def fit(keras, data: SpeechData, index: np.ndarray, *, epochs: int, seed: int, batch_size: int = 16):
    """Train from scratch on clips `index`, with fresh augmentation each epoch."""
    keras.utils.set_random_seed(seed)
    rng = np.random.default_rng(seed)
    model = build_model(keras, steps=epochs * int(np.ceil(len(index) / batch_size)))
    targets = np.eye(len(EMOTIONS), dtype=np.float32)[data.labels[index]]
    weights = class_weights(data.labels[index])
    for epoch in range(epochs):
        history = model.fit(
            epoch_features(data, index, rng), targets, sample_weight=weights, batch_size=batch_size, verbose=0
        )
        log.debug("epoch %d loss %.4f", epoch + 1, history.history["loss"][-1])
    return model


def predict_clips(predict, data: SpeechData, index: np.ndarray) -> np.ndarray:
    """(len(index), 7) clip probabilities: the mean over each clip's 2 s windows (1 s hop)."""
    return clip_probs(predict, [data.clips[i].astype(np.float32) / 32768.0 for i in index])


def corpus_metrics(probs: np.ndarray, data: SpeechData) -> dict:
    """Accuracy, unweighted average recall and per-class recall for each corpus (classes it has)."""
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
        report[name] = {
            "clips": int(mask.sum()),
            "accuracy": round(float(np.mean(pred[mask] == data.labels[mask])), 4),
            "uar": round(float(np.mean(list(recall.values()))), 4),
            "recall": recall,
            "confusion": confusion.tolist(),
        }
    return report


def cross_validate(keras, data: SpeechData, *, folds: int, epochs: int, seed: int) -> dict:
    """Leave-speakers-out: each fold trains without its speakers, then predicts only their clips."""
    fold = speaker_folds(data, folds)
    probs = np.zeros((len(data), len(EMOTIONS)), np.float32)
    per_fold = []
    for k in range(folds):
        started, held_out = time.time(), np.flatnonzero(fold == k)
        model = fit(keras, data, np.flatnonzero(fold != k), epochs=epochs, seed=seed + k)
        probs[held_out] = predict_clips(lambda x, m=model: m.predict(x, batch_size=128, verbose=0), data, held_out)
        accuracy = round(float(np.mean(probs[held_out].argmax(1) == data.labels[held_out])), 4)
        per_fold.append({"held_out": sorted(set(data.speakers[held_out])), "accuracy": accuracy})
        log.info(
            "fold %d/%d %s: accuracy %.3f (%.0f s)",
            k + 1,
            folds,
            per_fold[-1]["held_out"],
            accuracy,
            time.time() - started,
        )
    return {"folds": folds, "per_fold": per_fold, "per_corpus": corpus_metrics(probs, data)}


def export_litert(model, path: Path, check: np.ndarray, tolerance: float = 1e-3) -> Path:
    """Keras -> SavedModel -> LiteRT, then prove both give the same probabilities on `check`."""
    import tensorflow as tf

    from fercam.voice import VoiceClassifier

    with tempfile.TemporaryDirectory() as tmp:
        model.export(tmp, format="tf_saved_model", verbose=False)
        Path(path).write_bytes(tf.lite.TFLiteConverter.from_saved_model(tmp).convert())
    error = float(np.abs(model.predict(check, verbose=0) - VoiceClassifier(path).predict_features(check)).max())
    if error > tolerance:
        raise ExportError(f"LiteRT and Keras disagree by {error:.5f} (> {tolerance}) on {path}")
    log.info("exported %s (%.0f kB), max |LiteRT - Keras| = %.2e", path, path.stat().st_size / 1024, error)
    return Path(path)


def train_voice(
    out_dir: str | Path, *, data_dir: str | Path = DATA_DIR, epochs: int = 40, seed: int = 7, folds: int = 5
) -> dict:
    """Cross-validate (unless `folds` is 0), then fit all speakers and export `voice_cnn.tflite`."""
    from fercam.training import require_tensorflow

    keras = require_tensorflow()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    data = load_speech(data_dir)
    config = {"epochs": epochs, "seed": seed, "folds": folds, "clips": len(data)}
    metrics = {"config": config}
    if folds:
        metrics["cross_validation"] = cross_validate(keras, data, folds=folds, epochs=epochs, seed=seed)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    model = fit(keras, data, np.arange(len(data)), epochs=epochs, seed=seed)
    model.save(out_dir / "model.keras")
    check = log_mel(np.stack([fit_window(data.clips[i]) for i in range(0, len(data), 16)]))
    export_litert(model, out_dir / "voice_cnn.tflite", check)
    metrics["training_fit"] = evaluate_voice(out_dir / "voice_cnn.tflite", data_dir=data_dir)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def evaluate_voice(model_path: str | Path, *, data_dir: str | Path = DATA_DIR) -> dict:
    """Per-corpus accuracy, UAR and recall of a `.tflite` voice model on every labelled clip."""
    from fercam.voice import load_voice_classifier

    data = load_speech(data_dir)
    classifier = load_voice_classifier(model_path)
    return corpus_metrics(predict_clips(classifier.predict_features, data, np.arange(len(data))), data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run folder (keep it outside the repository)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="folder with savee.npz and emodb.npz")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--folds", type=int, default=5, help="speaker folds (10 = leave-one-speaker-out, 0 = none)")
    parser.add_argument("--evaluate", type=Path, metavar="TFLITE", help="only score this model on all clips")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.evaluate:
        result = evaluate_voice(args.evaluate, data_dir=args.data_dir)
    elif args.out:
        result = train_voice(args.out, data_dir=args.data_dir, epochs=args.epochs, seed=args.seed, folds=args.folds)
    else:
        parser.error("give --out DIR to train, or --evaluate MODEL")
    scores = result.get("cross_validation", {}).get("per_corpus", result)
    for name in CORPORA:
        if name in scores:
            log.info(
                "%s: accuracy %.3f, UAR %.3f, recall %s",
                name,
                scores[name]["accuracy"],
                scores[name]["uar"],
                scores[name]["recall"],
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
