"""The handlers behind each `fercam` subcommand; they print for humans and return exit codes."""

from __future__ import annotations

import json
import sys

from fercam.settings import Settings, SettingsStore, default_settings_path


def _settings(args) -> Settings:
    """Persisted settings with this run's command-line overrides on top."""
    settings = SettingsStore(default_settings_path()).get()
    changes = {"detector": getattr(args, "detector", None), "fps": getattr(args, "fps", None)}
    if getattr(args, "size", None):
        changes["width"], changes["height"] = args.size
    if getattr(args, "mirror", False):
        changes["mirror"] = True
    return settings.replace(**{k: v for k, v in changes.items() if v is not None})


DEFAULT_DATA = {"face": "../shared/data/fer2013.npz", "voice": "../shared/data/speech"}


def _data(args) -> str:
    """--data as given, else the default for --task (the face npz or the speech-data folder)."""
    return args.data or DEFAULT_DATA[args.task]


def _notify(message: str) -> None:
    print(f"fercam: {message}", file=sys.stderr)


def run(args) -> int:
    from fercam.apps.app import has_display, run_headless

    settings = _settings(args)
    source = args.source or settings.camera
    if args.no_tray or not has_display():
        frames = run_headless(
            source,
            args.sink,
            settings,
            max_frames=args.max_frames,
            events=args.events,
            vcam_backend=args.vcam_backend,
            notify=_notify,
        )
        print(f"{frames} frames from {source} -> {args.sink}")
        return 0
    return _run_tray(SettingsStore(default_settings_path(), initial=settings), source, args.sink, args.vcam_backend)


def tray(_args) -> int:
    from fercam.apps.app import has_display

    if not has_display():
        raise RuntimeError(
            "no display for the tray icon; run headless: fercam run --no-tray --source 0 --sink virtualcam"
        )
    return _run_tray(SettingsStore(default_settings_path()), None, "virtualcam", None)


def _run_tray(store: SettingsStore, source: str | None, sink: str, vcam_backend: str | None) -> int:
    from fercam.apps.app import App
    from fercam.apps.tray import Tray
    from fercam.detection import DETECTORS
    from fercam.sources import list_cameras

    app = App(store, sink_spec=sink, vcam_backend=vcam_backend, source_spec=source, notify=_notify)
    Tray(app, store, cameras=list_cameras() or [0], detectors=tuple(DETECTORS.available())).run()
    return 0


def devices(_args) -> int:
    from fercam.sinks import CAMERA_NAME, loopback_devices
    from fercam.sources import list_cameras

    cameras = list_cameras()
    print("webcams:", ", ".join(f"camera {i}" for i in cameras) if cameras else "none found")
    labels = loopback_devices()
    for device, label in labels.items():
        mark = "  <- FER Cam output" if label == CAMERA_NAME else ""
        print(f"video device {device}: {label}{mark}")
    if sys.platform.startswith("linux") and CAMERA_NAME not in labels.values():
        from fercam.sinks import driver_fix

        print(f'virtual camera "{CAMERA_NAME}": not found; {driver_fix()}')
    return 0


def doctor(args) -> int:
    from fercam.apps.doctor import run_doctor

    return run_doctor(vcam_backend=args.vcam_backend)


# The documented recipes: what `fercam train --task T` runs when an option is left out.
TRAIN_DEFAULTS = {
    "face": {"out": "runs/fernet", "epochs": 60, "seed": 1234},
    "voice": {"out": "runs/voice", "epochs": 20, "seed": 7},
}


def train(args) -> int:
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
    if args.task == "voice":
        from fercam.training.voice_train import voice_report

        for line in voice_report(args.model, data_dir=_data(args), out=args.out, cross_validate=args.cv):
            print(line)
        return 0
    else:
        from fercam.training.evaluate import evaluate_model

        metrics = evaluate_model(args.model, _data(args), out=args.out, mirror=not args.no_mirror, limit=args.limit)
    print(f"accuracy {metrics['accuracy']:.4f} on {metrics.get('samples', '?')} samples")
    for name, m in metrics.get("per_class", {}).items():
        print(f"  {name:9s} precision {m['precision']:.3f}  recall {m['recall']:.3f}")
    print(f"report: {args.out}")
    return 0


def analyze(args) -> int:
    from fercam.apps.analyze import analyze_inputs

    results = analyze_inputs(
        args.inputs,
        args.out,
        every=args.every,
        duration=args.duration,
        video=not args.no_video,
        detector=args.detector,
        jobs=args.jobs,
    )
    failed = [r for r in results if r.error]
    for r in results:
        if r.error:
            print(f"fercam: skipped {r.input}: {r.error}", file=sys.stderr)
        else:
            print(f"{r.input}: {r.summary_line()}")
    return 1 if failed and len(failed) == len(results) else 0


def bench(args) -> int:
    from fercam.apps.bench import BenchConfig, bench_model, format_model_report, format_report, run_bench

    if args.voice is not None:
        from fercam.voice.speed import bench_voice, format_voice_report

        result = bench_voice(args.voice or None)
        print(json.dumps(result) if args.json else format_voice_report(result))
        return 0
    if args.model is not None:
        result = bench_model(args.model or None)
        print(json.dumps(result) if args.json else format_model_report(result))
        return 0
    result = run_bench(
        BenchConfig(
            source=args.source,
            size=args.size,
            faces=args.faces,
            detector=args.detector,
            seconds=args.seconds,
            compare=args.compare,
        )
    )
    print(json.dumps(result) if args.json else format_report(result))
    return 0
