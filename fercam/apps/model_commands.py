"""The handlers of `fercam train` and `fercam evaluate`: the only app modules that import `fercam.training`.

Like `fercam.apps.commands`, they print for humans and return exit codes.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

DATA_HELP = {
    "face": "FER2013 as an npz, Kaggle's fer2013.csv or a train/test folder of class folders",
    "voice": "the folder with emodb.npz and savee.npz",
}


def _data(args) -> str:
    """--data, which an installed FER Cam cannot guess: it names what to pass instead of guessing."""
    if not args.data:
        raise ValueError(f"--data is required: {DATA_HELP[args.task]} (in a checkout: ../shared/data/...)")
    return args.data


# The documented recipes: what `fercam train --task T` runs when an option is left out.
TRAIN_DEFAULTS = {
    "face": {"out": "runs/fernet", "epochs": 60, "seed": 1234},
    "voice": {"out": "runs/voice", "epochs": 20, "seed": 7},
}


def train(args) -> int:
    """`fercam train --task face|voice`: a run folder with the model and its metrics (printed as JSON)."""
    for key, value in TRAIN_DEFAULTS[args.task].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.task == "voice":
        from fercam.training.voice_train import summary, train_voice

        metrics = summary(train_voice(args.out, data_dir=_data(args), epochs=args.epochs, seed=args.seed))
    else:
        from fercam.training.train import TrainConfig
        from fercam.training.train import train as train_face

        config = TrainConfig(
            data=_data(args),
            out=args.out,
            model=args.model,
            epochs=args.epochs,
            batch_size=args.batch_size,
            learning_rate=args.lr,
            seed=args.seed,
            limit=args.limit,
            weights=args.weights,
            init=args.init,
            teachers=tuple(args.teacher or ()),
            precision=args.precision,
        )
        metrics = {k: v for k, v in train_face(config, resume=args.resume).items() if k != "confusion"}
    print(json.dumps(metrics, indent=2))
    print(f"run folder: {args.out}")
    return 0


def evaluate(args) -> int:
    """`fercam evaluate`: the voice model, the face model on FER2013, or the app's reading of labelled photos."""
    from fercam.paths import model_file

    if args.task == "voice":
        from fercam.training.voice_train import voice_report

        model = args.model or model_file("voice_mlp.tflite")
        for line in voice_report(model, data_dir=_data(args), out=args.out, cross_validate=args.cv):
            print(line)
        return 0
    if (Path(args.out) / "metrics.json").exists():  # an earlier evaluation's, or a training run's
        raise ValueError(f"{Path(args.out) / 'metrics.json'} already exists: choose another --out")
    if (Path(_data(args)) / "labels.csv").is_file():
        return evaluate_photos(args)
    from fercam.emotion import DEFAULT_MODEL
    from fercam.training.evaluate import evaluate_model

    model = args.model or model_file(DEFAULT_MODEL)
    metrics = evaluate_model(model, _data(args), out=args.out, mirror=not args.no_mirror, limit=args.limit)
    print(f"accuracy {metrics['accuracy']:.4f} on {metrics.get('samples', '?')} samples")
    for name, m in metrics.get("per_class", {}).items():
        print(f"  {name:9s} precision {m['precision']:.3f}  recall {m['recall']:.3f}")
    print(f"report: {args.out}")
    return 0


def evaluate_photos(args) -> int:
    """A folder of photos with a labels.csv: the app's whole reading against the FER2013 model alone."""
    from fercam.training.wild import evaluate_photos as evaluate

    log = functools.partial(print, file=sys.stderr)
    result = evaluate(args.data, args.out, model=args.model, limit=args.limit, log=log)
    estimate = result["held_out_estimate"]
    print(
        "in-sample: the shipped rule was fitted on these pictures, so this reading flatters it"
        if estimate
        else "held out: the shipped rule was not fitted on this folder"
    )
    for name, title in (("reading", "the app's reading"), ("fer_cnn_alone", "FER2013 model alone, same faces")):
        m = result[name]
        print(f"{title}: accuracy {m['accuracy']:.4f}, balanced accuracy {m['balanced_accuracy']:.4f}")
        print("  recall: " + ", ".join(f"{k} {v:.2f}" for k, v in m["recall"].items()))
    if estimate:
        print(
            f"the rule's nested held-out estimate for this folder: accuracy {estimate['accuracy']:.4f}, "
            f"balanced accuracy {estimate['balanced_accuracy']:.4f}"
        )
        print("  recall: " + ", ".join(f"{k} {v:.2f}" for k, v in estimate["recall"].items()))
    m = result["reading"]
    print(f"  no face found in {m['no_face']} of {m['samples']} pictures (counted wrong)")
    for i, fold in enumerate(result.get("folds", [])):
        print(
            f"  fold {i + 1} (whole persons or films): {fold['samples']} pictures, accuracy {fold['accuracy']:.4f}, "
            f"balanced {fold['balanced_accuracy']:.4f}"
        )
    print(f"report: {args.out}")
    return 0
