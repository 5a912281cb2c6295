"""The backbone comparison in docs/BACKBONES.md: every model, the same recipe, the same CPU budget.

For each model this tool times a few training steps, sizes the run to fit the budget
(whole epochs, at least one), then runs `fercam.training.train` exactly as `fercam train`
does (augmentation, class weights, FER+ blended targets, warm-up + cosine AdamW), which
also calibrates, exports the int8 LiteRT model and scores it on the public test split.
It prints one JSON line per model and, with --markdown, the table rows.

Usage:
  .venv/bin/python tools/compare_backbones.py --data ../shared/data/fer2013.npz \
      --out /tmp/backbones --budget-min 12 [--models fernet,mobilenetv2,...]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path

PROBE_STEPS = 12  # timed steps after PROBE_WARMUP compile/warm-up steps
PROBE_WARMUP = 4


def epoch_seconds(config) -> float:
    """Seconds one training epoch takes, from a short timed probe on a throwaway model."""
    import keras

    from fercam.training.models import dtype_policy
    from fercam.training.train import _datasets, _new_model, resolve_precision

    with dtype_policy(resolve_precision(config.precision)):  # as train() will
        fit_ds, _, _, _ = _datasets(config)
        model = _new_model(config, fit_ds)
        stamps: list[float] = []
        probe = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_, **__: stamps.append(time.perf_counter()))
        model.fit(fit_ds.take(PROBE_WARMUP + PROBE_STEPS), epochs=1, callbacks=[probe], verbose=0)
    per_step = (stamps[-1] - stamps[PROBE_WARMUP - 1]) / PROBE_STEPS
    return per_step * len(fit_ds)


def compare(name: str, data: str, out: Path, budget_min: float) -> dict:
    import keras

    from fercam.apps.bench.parts import bench_model
    from fercam.training.train import TrainConfig, train

    probe_config = TrainConfig(data=data, out=str(out / name), model=name)
    per_epoch = epoch_seconds(probe_config)
    epochs = max(1, math.floor(budget_min * 60 / per_epoch))
    warmup = 1 if epochs >= 5 else 0
    config = TrainConfig(data=data, out=str(out / name), model=name, epochs=epochs, warmup_epochs=warmup)
    keras.backend.clear_session()
    start = time.perf_counter()
    metrics = train(config)
    minutes = (time.perf_counter() - start) / 60
    run = out / name
    params = keras.models.load_model(run / "model.keras").count_params()
    return {
        "model": name,
        "params_m": round(params / 1e6, 2),
        "epochs": epochs,
        "probe_epoch_min": round(per_epoch / 60, 2),
        "run_min": round(minutes, 1),
        "accuracy": metrics["accuracy"],
        "accuracy_single_pass": metrics["accuracy_single_pass"],
        "macro_f1": metrics["macro_f1"],
        "recall_disgust": metrics["per_class"]["disgust"]["recall"],
        "recall_fear": metrics["per_class"]["fear"]["recall"],
        "tflite_mb": round((run / "model.tflite").stat().st_size / 1e6, 2),
        "face_ms": bench_model(str(run / "model.tflite"))["ms_per_face"],
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, no GPU",
    }


def markdown_row(r: dict) -> str:
    """One row of the table in docs/BACKBONES.md."""
    return (
        f"| {r['model']} | {r['params_m']} | {r['epochs']} | {r['run_min']} "
        f"| {r['accuracy']:.1%} ({r['accuracy_single_pass']:.1%}) | {r['macro_f1']:.3f} "
        f"| {r['recall_disgust']:.1%} | {r['recall_fear']:.1%} | {r['tflite_mb']} | {r['face_ms']} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--budget-min", type=float, default=12.0, help="training minutes per model")
    parser.add_argument("--models", default="fernet,mobilenetv2,resnet50,densenet121,vgg16")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = []
    for name in args.models.split(","):
        row = compare(name, args.data, args.out, args.budget_min)
        rows.append(row)
        print("BACKBONE", json.dumps(row), flush=True)
        (args.out / "results.jsonl").open("a").write(json.dumps(row) + "\n")
    if args.markdown:
        print("\n".join(markdown_row(r) for r in rows))


if __name__ == "__main__":
    main()
