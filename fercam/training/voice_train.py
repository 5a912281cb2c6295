"""Train and evaluate the voice-emotion MLP on every corpus of a speech-data folder, speaker-independently.

`python -m fercam.training.voice_train --out DIR` cross-validates (leave-one-speaker-out per corpus
and leave-one-corpus-out, `fercam.training.voice_eval`), fits a temperature and an "unsure"
threshold on the held-out speakers' windows, then trains the shipped model on everyone and exports
`voice_mlp.tflite` with `voice_mlp.json` (feature statistics + calibration). The run folder gets
`metrics.json`, confusion-matrix PNGs, `model.keras`, the `.tflite` and the `.json`.

Every window is used three times in training: standardised with its speaker's statistics, with its
clip's own (shrunk towards the training speakers' average) and with the average alone; a context
input says which (`fercam.voice.FeatureNorm`). Held-out speakers are scored the same three ways,
never with their labels (`speaker`, `clip`, `population`). Augmented copies of the training clips
(noise, reverberation, gain, phone codec) are added to training only.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from fercam.training.data import class_weights
from fercam.training.voice_data import DATA_DIR, SpeechData, load_speech
from fercam.training.voice_eval import (
    Split,
    confidence_threshold,
    corpus_scores,
    evaluate_voice,
    expected_calibration_error,
    fit_temperature,
    plot_confusion,
    splits,
)
from fercam.training.voice_export import export_litert
from fercam.training.voice_table import WindowTable, normalise_groups, population_norm, window_table
from fercam.types import EMOTIONS
from fercam.voice.calibration import temperature_scale
from fercam.voice.features import FeatureNorm

log = logging.getLogger(__name__)

MODEL_NAME = "voice_mlp"
SCENARIOS = ("speaker", "clip", "population")
PROTOCOLS = ("loso", "loco")
PRECISION = 0.85  # a named emotion must be right this often on held-out speakers' windows, else "unsure"
BATCH = 256  # 3k steps per fit: the 2-core machine runs 37 fits per cross-validation


def scenario_inputs(norm: FeatureNorm, table: WindowTable, voices: np.ndarray) -> dict[str, np.ndarray]:
    """The windows standardised per speaker, per clip (an augmented copy is its own clip) and by the prior."""
    clips = table.clip * 2 + table.augmented
    return {
        "speaker": normalise_groups(norm, table.features, voices),
        "clip": normalise_groups(norm, table.features, clips),
        "population": norm.apply(table.features, norm.prior()),
    }


def build_mlp(keras, dims: int, *, hidden: int = 256, dropout: float = 0.5, l2: float = 1e-3, noise: float = 0.3):
    """`dims` standardised features + context -> 7 probabilities: noise and dropout, one hidden ReLU layer."""
    layers, regular = keras.layers, keras.regularizers.l2(l2)
    inputs = keras.Input((dims + 1,), name="features")
    x = layers.Dropout(0.1)(layers.GaussianNoise(noise)(inputs[:, :dims]))
    x = layers.Concatenate()([x, inputs[:, dims:]])  # the context is neither noised nor dropped
    x = layers.Dense(hidden, activation="relu", kernel_regularizer=regular)(x)
    x = layers.Dropout(dropout)(x)
    outputs = layers.Dense(len(EMOTIONS), activation="softmax", kernel_regularizer=regular, name="emotion")(x)
    return keras.Model(inputs, outputs, name="voice_mlp")


def fit(keras, data: SpeechData, table: WindowTable, *, epochs: int, seed: int):
    """Train on every row of `table` (its clips' speakers only) in all three scenarios; returns (model, norm)."""
    voices, labels = data.voices[table.clip], data.labels[table.clip]
    norm = population_norm(table.features[~table.augmented], voices[~table.augmented])
    inputs = np.concatenate(list(scenario_inputs(norm, table, voices).values()))
    targets = np.tile(labels, len(SCENARIOS))
    keras.utils.set_random_seed(seed)
    model = build_mlp(keras, table.features.shape[1])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    model.fit(
        inputs, targets, sample_weight=class_weights(targets, 0.5)[targets], epochs=epochs, batch_size=BATCH, verbose=0
    )
    return model, norm


def clip_means(window_probs: np.ndarray, clip: np.ndarray, clips: int) -> np.ndarray:
    """(clips, 7): the mean of each clip's window probabilities."""
    total = np.zeros((clips, len(EMOTIONS)))
    np.add.at(total, clip, window_probs)
    return total / np.maximum(np.bincount(clip, minlength=clips), 1)[:, None]


def run_fold(keras, data: SpeechData, table: WindowTable, split: Split, *, epochs: int, seed: int):
    """Train without the split's clips; (window index, {scenario: window probabilities}) of its clean windows."""
    test_rows = split.test[table.clip]
    model, norm = fit(keras, data, table.rows(~test_rows), epochs=epochs, seed=seed)
    index = np.flatnonzero(test_rows & ~table.augmented)
    held_out = table.rows(index)
    inputs = scenario_inputs(norm, held_out, data.voices[held_out.clip])
    return index, {s: model.predict(z, batch_size=1024, verbose=0) for s, z in inputs.items()}


def stored_fold(path: Path, compute):
    """A fold's (index, probabilities) from `path`, or computed and saved there: a killed run resumes."""
    if path.is_file():
        with np.load(path) as npz:
            return npz["index"], {s: npz[s] for s in SCENARIOS}
    index, probs = compute()
    np.savez(path, index=index, **probs)
    return index, probs


def cross_validate(
    keras, data: SpeechData, table: WindowTable, *, epochs: int, seed: int, groups=0, protocols=PROTOCOLS, store: Path
) -> dict:
    """Every fold of both protocols; clip scores per protocol, scenario and corpus, and the held-out windows."""
    windows = {p: {s: np.zeros((len(table.clip), len(EMOTIONS)), np.float32) for s in SCENARIOS} for p in protocols}
    report: dict = {"folds": []}
    for k, split in enumerate(splits(data, protocols, groups)):
        started = time.time()
        fold = lambda: run_fold(keras, data, table, split, epochs=epochs, seed=seed + k)  # noqa: B023, E731
        index, probs = stored_fold(store / f"{split.protocol}-{split.held_out}.npz", fold)
        for scenario, p in probs.items():
            windows[split.protocol][scenario][index] = p
        clip_pred = clip_means(probs["speaker"], table.clip[index], len(data))[split.test].argmax(axis=1)
        accuracy = round(float(np.mean(clip_pred == data.labels[split.test])), 4)
        report["folds"].append({"protocol": split.protocol, "held_out": split.held_out, "accuracy": accuracy})
        log.info("%s %s: accuracy %.3f (%.0f s)", split.protocol, split.held_out, accuracy, time.time() - started)
    clean = ~table.augmented
    for protocol, by_scenario in windows.items():
        report[protocol] = {
            s: corpus_scores(clip_means(p[clean], table.clip[clean], len(data)), data, np.ones(len(data), bool))
            for s, p in by_scenario.items()
        }
    if "loso" in windows:
        report["calibration"] = calibration(windows["loso"], data.labels[table.clip], clean)
    return report


def calibration(held_out: dict[str, np.ndarray], labels: np.ndarray, rows: np.ndarray) -> dict:
    """Temperature and "unsure" threshold from held-out speakers' single windows (speaker and clip statistics)."""
    probs = np.concatenate([held_out["speaker"][rows], held_out["clip"][rows]])
    truth = np.tile(labels[rows], 2)
    temperature = fit_temperature(np.log(np.clip(probs, 1e-12, 1)), truth)
    calibrated = temperature_scale(probs, temperature)
    confidence, correct = calibrated.max(axis=1), calibrated.argmax(axis=1) == truth
    threshold = confidence_threshold(confidence, correct, PRECISION)
    sure = confidence >= threshold
    return {
        "temperature": round(temperature, 4),
        "unsure_below": round(threshold, 4),
        "precision_target": PRECISION,
        "windows": int(len(truth)),
        "ece_before": expected_calibration_error(probs, truth),
        "ece_after": expected_calibration_error(calibrated, truth),
        "share_sure": round(float(sure.mean()), 4),
        "accuracy_sure": round(float(correct[sure].mean()), 4),
        "accuracy_all": round(float(correct.mean()), 4),
    }


def write_plots(report: dict, out_dir: Path) -> list[Path]:
    """One confusion-matrix PNG per protocol and corpus (speaker statistics)."""
    paths = []
    for protocol in [p for p in PROTOCOLS if p in report]:
        for corpus, m in report[protocol]["speaker"].items():
            title = f"{corpus}, {protocol}: UAR {m['uar']:.1%}, accuracy {m['accuracy']:.1%}"
            paths.append(plot_confusion(m["confusion"], title, out_dir / f"confusion_{protocol}_{corpus}.png"))
    return paths


def train_voice(
    out_dir: str | Path,
    *,
    data_dir: str | Path = DATA_DIR,
    epochs: int = 20,
    seed: int = 7,
    kind: str = "hand",
    copies: int = 1,
    groups: int = 0,
    cross_validation: bool = True,
    cache: Path | None = None,
    export: bool = True,
    protocols: tuple[str, ...] = PROTOCOLS,
) -> dict:
    """Cross-validate, calibrate, then fit all speakers and export (only the hand-written features export)."""
    from fercam.training import require_tensorflow

    data = load_speech(data_dir)  # first: a wrong --data fails before the slow TensorFlow import
    keras = require_tensorflow()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = window_table(data, kind, copies=copies, seed=seed, cache=cache)
    config = {"epochs": epochs, "seed": seed, "kind": kind, "copies": copies, "groups": groups, "clips": len(data)}
    metrics: dict = {"config": {**config, "windows": len(table.clip), "corpora": data.corpora}}
    calibrated = {"temperature": 1.0, "unsure_below": 0.0}
    if cross_validation:
        folds = out_dir / "folds"  # held-out predictions per fold, kept so that a stopped run resumes
        folds.mkdir(exist_ok=True)
        metrics["cross_validation"] = cross_validate(
            keras, data, table, epochs=epochs, seed=seed, groups=groups, protocols=protocols, store=folds
        )
        calibrated = metrics["cross_validation"].get("calibration", calibrated)
        write_plots(metrics["cross_validation"], out_dir)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    if kind == "hand" and export:
        model, norm = fit(keras, data, table, epochs=epochs, seed=seed)
        model.save(out_dir / "model.keras")
        path = out_dir / f"{MODEL_NAME}.tflite"
        export_litert(model, norm, path, table.features[::16], calibrated)
        metrics["training_fit"] = evaluate_voice(path, data=data)
        (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def summary(metrics: dict) -> dict:
    """UAR per protocol and corpus (speaker statistics) for the console, or the fit when there is no CV."""
    cv = metrics.get("cross_validation")
    if cv:
        return {p: {c: m["uar"] for c, m in cv[p]["speaker"].items()} for p in PROTOCOLS if p in cv}
    fit_scores = metrics.get("training_fit", metrics)
    return {c: (m["accuracy"], m["uar"]) for c, m in fit_scores.items() if isinstance(m, dict) and "uar" in m}


def recall_line(name: str, m: dict) -> str:
    recall = ", ".join(f"{e} {v:.1%}" for e, v in m["recall"].items())
    return f"{name}: UAR {m['uar']:.1%}, accuracy {m['accuracy']:.1%} on {m['clips']} clips; recall {recall}"


def voice_report(model_path, *, data_dir=DATA_DIR, out: str | Path = "runs/evaluate", cross_validate: bool = False):
    """Lines for the console: the model's fit on every corpus and, with `cross_validate`, the held-out scores
    of its recipe retrained leave-one-speaker-out and leave-one-corpus-out (PNGs and metrics.json in `out`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for corpus, m in evaluate_voice(model_path, data_dir=data_dir).items():
        plot_confusion(m["confusion"], f"{corpus}, training fit", out / f"confusion_fit_{corpus}.png")
        lines.append(recall_line(f"{corpus} (training fit, not held out)", m))
    if cross_validate:
        report = train_voice(out, data_dir=data_dir, export=False)["cross_validation"]
        for protocol in ("loso", "loco"):
            lines += [recall_line(f"{c} {protocol}", m) for c, m in report[protocol]["speaker"].items()]
    return lines + [f"confusion matrices: {out}/confusion_*.png"]


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="run folder (keep it outside the repository)")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="speech-data folder (all corpora in it)")
    parser.add_argument("--epochs", type=int, default=20, help="passes over the (3x mixed) windows")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--features", choices=("hand", "egemaps", "compare"), default="hand")
    parser.add_argument("--copies", type=int, default=1, help="augmented copies of each training clip")
    parser.add_argument("--groups", type=int, default=0, help="0 = leave-one-speaker-out; N = N speaker groups")
    parser.add_argument("--cache", type=Path, help="folder to keep window features in between runs")
    parser.add_argument("--no-cv", action="store_true", help="skip cross-validation, only train and export")
    parser.add_argument("--no-export", action="store_true", help="cross-validate only")
    parser.add_argument("--protocols", nargs="+", choices=PROTOCOLS, default=PROTOCOLS)
    parser.add_argument("--evaluate", type=Path, metavar="TFLITE", help="only score this model on all clips")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.evaluate:
        result = evaluate_voice(args.evaluate, data_dir=args.data_dir)
    elif args.out:
        options = {"epochs": args.epochs, "seed": args.seed, "kind": args.features, "copies": args.copies}
        result = train_voice(
            args.out,
            data_dir=args.data_dir,
            groups=args.groups,
            cross_validation=not args.no_cv,
            cache=args.cache,
            export=not args.no_export,
            protocols=tuple(args.protocols),
            **options,
        )
    else:
        parser.error("give --out DIR to train, or --evaluate MODEL")
    log.info("UAR: %s", json.dumps(summary(result)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
