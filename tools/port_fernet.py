"""Bring a fernet trained by tools/gpu_backbones.py back into Keras and make a candidate fer_cnn.tflite.

Loads the Keras-layout arrays into `make_fernet()`, checks that Keras reproduces the PyTorch logits
on the stored reference faces, then runs the project's own ending (`train.finish`: serving frame,
calibration on the validation rows of `--seed`'s split, which the GPU run never trained on, int8 LiteRT
export, public-test score through `load_classifier()`), and compares the candidate with the shipped
model on the public test and on the wild_faces_dev crops (largest MTCNN face as the app crops it; a
picture without a detected face counts as wrong). Never touches models/: the candidate stays in --out.

    PYTHONPATH=. .venv/bin/python tools/port_fernet.py --weights $OUT/fernet_student.npz --out runs/gpu_student
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from facecodec import decode

ROOT = Path(__file__).resolve().parents[1]
MAX_PORT_DIFF = 1e-3  # float32 logits of the same weights in two frameworks


def keras_fernet(weights: dict):
    """make_fernet() with the PyTorch weights (conv{i}, bn{i}, logits, in layer order)."""
    import keras

    from fercam.training.models import make_fernet

    model = make_fernet(stages=tuple(tuple(int(v) for v in s) for s in weights["stages"]))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    if (
        len(convs) != len(norms)
        or f"conv{len(convs)}_kernel" in weights
        or f"conv{len(convs) - 1}_kernel" not in weights
    ):
        raise SystemExit("the weights do not match make_fernet's layers")
    for i, (conv, norm) in enumerate(zip(convs, norms)):
        conv.set_weights([weights[f"conv{i}_kernel"]])
        norm.set_weights([weights[f"bn{i}_{k}"] for k in ("gamma", "beta", "mean", "var")])
    model.get_layer("logits").set_weights([weights["logits_kernel"], weights["logits_bias"]])
    return model


def wild_scores(classifier, crops: np.ndarray, labels: np.ndarray, found: np.ndarray) -> dict:
    """Accuracy and balanced accuracy as wild_faces_dev/README.md scores them (no face: wrong)."""
    from fercam.training.evaluate import predict

    pred = np.where(found, predict(classifier, crops).argmax(1), -1)
    recalls = [float((pred[labels == c] == c).mean()) for c in np.unique(labels)]
    return {
        "accuracy": round(float((pred == labels).mean()), 4),
        "balanced_accuracy": round(float(np.mean(recalls)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", required=True, help="fernet_student.npz or fernet_plain.npz from the GPU run")
    parser.add_argument("--out", required=True, help="run folder for the candidate (model.keras, model.tflite, ...)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "fer2013.npz"))
    parser.add_argument("--packed", default=str(ROOT / ".gpu" / "fer_gpu.npz"), help="for the wild crops")
    parser.add_argument("--shipped", default=str(ROOT / "models" / "fer_cnn.tflite"))
    parser.add_argument("--seed", type=int, default=2345, help="validation split: the packed data's")
    args = parser.parse_args()

    from fercam.emotion import load_classifier
    from fercam.training.data import load_splits, validation_split
    from fercam.training.evaluate import evaluate_probs, predict
    from fercam.training.train import finish

    with np.load(args.weights) as npz:
        weights = {k: npz[k] for k in npz.files}
    model = keras_fernet(weights)
    logits = np.asarray(model(weights["ref_faces"][..., None].astype(np.float32), training=False))
    diff = float(np.abs(logits - weights["ref_logits"]).max())
    print(f"port: max |Keras - PyTorch| logit difference {diff:.2e} on {len(logits)} reference faces")
    if diff > MAX_PORT_DIFF:
        raise SystemExit(f"port check failed: {diff:.2e} > {MAX_PORT_DIFF}")

    splits = load_splits(args.data)
    _, val_idx = validation_split(splits.train.y, 0.1, args.seed)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    candidate = finish(model, out, splits.train.subset(val_idx), splits.test)

    with np.load(args.packed) as npz:
        counts = [int(n) for n in npz["face_counts"]]
        crops = decode(npz["faces_xz"], (sum(counts), 48, 48))[counts[0] + counts[1] :]
        wild_y, found = npz["wild_y"].astype(np.int64), npz["wild_found"]
    shipped = load_classifier(args.shipped)
    report = {
        "port_max_abs_logit_diff": diff,
        "candidate": {
            "public": {k: candidate[k] for k in ("accuracy", "macro_f1", "accuracy_single_pass")},
            "public_recall": {k: v["recall"] for k, v in candidate["per_class"].items()},
            "wild": wild_scores(load_classifier(out / "model.tflite"), crops, wild_y, found),
            "litert_vs_keras": candidate["litert_vs_keras"],
        },
        "shipped": {
            "public": evaluate_probs(predict(shipped, splits.test.x), splits.test.y),
            "wild": wild_scores(shipped, crops, wild_y, found),
        },
    }
    shipped_public = report["shipped"]["public"]
    report["shipped"]["public_recall"] = {k: v["recall"] for k, v in shipped_public["per_class"].items()}
    report["shipped"]["public"] = {k: shipped_public[k] for k in ("accuracy", "macro_f1")}
    (out / "comparison.json").write_text(json.dumps(report, indent=2))
    for name in ("candidate", "shipped"):
        r = report[name]
        print(
            f"{name:9s}: public {r['public']['accuracy']:.2%} (macro F1 {r['public']['macro_f1']:.3f}), "
            f"wild_faces_dev {r['wild']['accuracy']:.2%} (balanced {r['wild']['balanced_accuracy']:.2%})"
        )
    print(f"candidate in {out}/model.tflite; models/ unchanged")


if __name__ == "__main__":
    main()
