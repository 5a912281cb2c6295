"""`fercam ...`: a thin command line over the library. main(argv) -> exit code, never a traceback."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from fercam import __version__
from fercam.defaults import DEFAULT_DETECTOR, DEFAULT_PORT
from fercam.errors import one_line

log = logging.getLogger("fercam")


def _size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1280x720, not {text!r}") from None
    if not (16 <= width <= 7680 and 16 <= height <= 4320):
        raise argparse.ArgumentTypeError(f"size must be between 16x16 and 7680x4320, not {text!r}")
    return width, height


def _number(kind, minimum, what: str, maximum=None):
    """An argparse type: a `kind` from `minimum` (to `maximum`), else a one-line message with the value given."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}") from None
        if not value >= minimum or (maximum is not None and value > maximum):  # also refuses nan
            raise argparse.ArgumentTypeError(f"expected {what}, not {text!r}")
        return value

    return parse


def _given(what: str):
    """An argparse type: text that is not empty ("" would mean the current folder, or webcam 0)."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, not an empty string")
        return text

    return parse


COUNT = _number(int, 1, "a whole number of 1 or more")
COUNT_OR_ZERO = _number(int, 0, "a whole number of 0 or more")
SECONDS = _number(float, 0, "seconds, 0 or more")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="run the pipeline (headless with --no-tray)")
    p.add_argument(
        "--source",
        type=_given("a source"),
        help="webcam index, video file, stream URL, image or folder (default: settings)",
    )
    sink_help = "virtualcam, window or file:PATH (default: virtualcam)"
    p.add_argument("--sink", type=_given("a sink"), default="virtualcam", help=sink_help)
    p.add_argument("--no-tray", action="store_true", help="run without the tray icon")
    p.add_argument(
        "--mode",
        choices=("live", "offline", "image"),
        help="live: paced like a camera, newest frame wins; offline: every frame in order; image: unrelated "
        "pictures (default: live for cameras, streams and live outputs, image for pictures, else offline)",
    )
    p.add_argument(
        "--max-frames",
        type=_number(int, 0, "a whole number of 0 or more"),
        default=0,
        metavar="N",
        help="stop after N frames (0: no limit)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    p.add_argument(
        "--events", type=_given("a file name"), metavar="FILE.jsonl", help="write one JSON line per analysed frame"
    )
    p.add_argument("--detector", help="face detector: mtcnn (default), yunet, mtcnn-reference")
    p.add_argument("--vcam-backend", help="pyvirtualcam backend: obs, unitycapture, v4l2loopback, ...")
    p.add_argument("--size", type=_size, help="output size, e.g. 1280x720")
    p.add_argument("--fps", type=_number(int, 1, "a whole number from 1 to 240", 240), help="output frame rate")
    p.add_argument("--mirror", action="store_true", help="mirror the output")
    p.add_argument("--serve", action="store_true", help="with --no-tray: serve the FER Cam window (live mode)")
    p.add_argument(
        "--microphone",
        type=_given("a recording"),
        metavar="CLIP",
        help="with --no-tray: hear CLIP's sound as the microphone, in real time (live mode, the voice on: its emotion "
        "on the face that speaks); for demos and tests",
    )
    _add_port(p)


def _add_port(p) -> None:
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="the window's port on 127.0.0.1 (0: any free one)")


def _add_training(sub) -> None:
    p = sub.add_parser("train", help="train an emotion model (needs fercam[train])")
    p.add_argument("--task", choices=("face", "voice"), default="face", help="the face model or the voice model")
    p.add_argument(
        "--data",
        help="face: npz, fer2013.csv or a train/test folder; voice: a folder of corpora (NAME.npz, or sub-folders "
        "of audio files with a labels.csv: file, label, speaker) or one such folder",
    )
    p.add_argument("--out", help="run folder: config, checkpoints, metrics (default runs/fernet or runs/voice)")
    p.add_argument(
        "--model", default="fernet", help="fernet, fernet-wide (a teacher), vgg16, resnet50, densenet121, mobilenetv2"
    )
    p.add_argument("--epochs", type=int, help="default 60 (face), 20 (voice)")
    p.add_argument("--batch-size", type=int, default=64, help="examples per training step (default 64)")
    p.add_argument("--lr", type=float, default=2e-3, help="the peak learning rate (default 0.002)")
    p.add_argument("--seed", type=int, help="default 1234 (face), 7 (voice)")
    p.add_argument("--limit", type=int, default=0, help="use only the first N training rows")
    p.add_argument("--weights", help="local ImageNet weights file for a keras.applications backbone")
    p.add_argument(
        "--init", help="a trained model of the same architecture to start from (fine-tuning): .keras or fernet .tflite"
    )
    p.add_argument(
        "--teacher",
        action="append",
        help="a trained model (.keras, or a fernet .tflite) to distil from; repeat for an ensemble of teachers",
    )
    p.add_argument(
        "--precision", default="auto", help="float32, mixed_bfloat16 or mixed_float16 (default: auto, bf16 if native)"
    )
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p = sub.add_parser(
        "evaluate",
        help="score a model on the public test split, or the app's reading on a labelled folder of photos",
    )
    p.add_argument("model", nargs="?", help="a .tflite or .keras model (default: the shipped one)")
    p.add_argument("--task", choices=("face", "voice"), default="face", help="score a face model or a voice model")
    p.add_argument(
        "--data",
        help="face: npz, fer2013.csv, a train/test folder, or a folder of photos with labels.csv "
        "(file,label[,person]: the app's reading, per fold of persons); voice: the speech-data folder",
    )
    p.add_argument("--out", default="runs/evaluate", help="folder for metrics.json and the figures")
    p.add_argument("--no-mirror", action="store_true", help="score each face once, without its mirror image")
    p.add_argument("--limit", type=int, default=0, help="score only the first N test faces (or labelled photos)")
    p.add_argument(
        "--cv",
        action="store_true",
        help="voice: also retrain the recipe leave-one-speaker-out and leave-one-corpus-out (held-out scores, "
        "confusion PNGs in --out; about an hour on 2 cores)",
    )


def _add_analysis(sub) -> None:
    p = sub.add_parser("analyze", help="emotion timelines, summaries and plots for recordings")
    p.add_argument(
        "inputs", nargs="+", type=_given("an input"), metavar="INPUT", help="video, audio, stream URL, image or folder"
    )
    p.add_argument(
        "-o",
        "--out",
        type=_given("a folder"),
        required=True,
        metavar="OUTDIR",
        help="the folder for the results: one sub-folder per input",
    )
    p.add_argument("--every", type=COUNT, default=1, metavar="N", help="analyse every N-th frame")
    p.add_argument("--duration", type=SECONDS, default=0, metavar="S", help="stop after S seconds (streams)")
    p.add_argument("--no-video", action="store_true", help="skip the annotated video")
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help="face detector: mtcnn (default) or yunet")
    jobs_help = "parallel inputs (default 0: one per core; with --cluster local: the cores of the local Ray instance)"
    p.add_argument("--jobs", type=COUNT_OR_ZERO, default=0, help=jobs_help)
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run one Ray task per input on the Ray cluster at ADDRESS (host:port), or `local` (needs fercam[cluster])",
    )
    p.add_argument(
        "--task-cpus", type=COUNT, default=1, metavar="N", help="with --cluster: cores an input's task takes"
    )
    p = sub.add_parser("bench", help="measure the live pipeline (fps, latency, analysis rate, memory)")
    p.add_argument(
        "--source",
        help="a webcam index, or a video of a face replayed as a 30 fps camera "
        "(default: the first webcam that opens, else the clip shipped with FER Cam)",
    )
    p.add_argument("--size", type=_size, default=(1280, 720), help="the output size measured (default 1280x720)")
    p.add_argument(
        "--faces",
        type=_number(int, 1, "a whole number from 1 to 64", 64),
        default=1,
        help="tile the clip to show N faces",
    )
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help="face detector: mtcnn (default) or yunet")
    p.add_argument(
        "--seconds",
        type=_number(float, 0.5, "seconds from 0.5 to 86400 (a day)", 86400),
        default=10.0,
        help="how long to measure (default 10)",
    )
    p.add_argument("--compare", action="store_true", help="also time the reference mtcnn on the same frames")
    p.add_argument("--matrix", action="store_true", help="run every scenario with a goal, each in a fresh process")
    p.add_argument(
        "--soak",
        type=_number(float, 1, "seconds from 1 to 604800 (a week)", 604800),
        metavar="S",
        help="run S seconds, watching memory and frame rate",
    )
    p.add_argument("--report", metavar="FILE.md", help="with --matrix: write the results as a Markdown page")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object")
    p.add_argument(
        "--model", nargs="?", const="", metavar="PATH", help="time the emotion model alone (default: the shipped one)"
    )
    p.add_argument(
        "--analyze", metavar="CLIP", help="time `fercam analyze` on a recording, stage by stage (CPU ms a frame)"
    )
    p.add_argument(
        "--microphone",
        type=_given("a recording"),
        metavar="CLIP",
        help="measure with the voice on: CLIP's sound heard as the microphone, looped (voice emotion, who is speaking)",
    )
    p.add_argument(
        "--voice",
        nargs="?",
        const="",
        metavar="PATH",
        help="time the voice model per 2 s window (features, model, VAD)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fercam", description="FER Cam: emotions on faces, live as a virtual camera.")
    parser.add_argument("--version", action="version", version=f"fercam {__version__}")
    parser.add_argument("--debug", action="store_true", help="log details and show tracebacks")
    sub = parser.add_subparsers(dest="command", help="what to do (none: start the tray app)")
    _add_run(sub)
    sub.add_parser(
        "devices",
        help="list webcams and virtual cameras",
        description="List the webcams that open (index and size, for --source or the window's camera box) and the "
        "virtual cameras FER Cam can send to.",
    )
    p = sub.add_parser("window", help="open the FER Cam window (starts FER Cam without a tray if it is not running)")
    p.add_argument("--vcam-backend", help="pyvirtualcam backend: obs, unitycapture, v4l2loopback, ...")
    _add_port(p)
    p = sub.add_parser("doctor", help="check the installation and say how to fix what is missing")
    p.add_argument("--vcam-backend", help="pyvirtualcam backend to try")
    _add_training(sub)
    _add_analysis(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed its one-line usage error
        return int(exc.code or 0)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING, format="fercam: %(message)s")
    logging.captureWarnings(True)  # libraries' warnings (matplotlib's, Pillow's) go to the log, not the terminal
    if not args.debug:  # OpenCV prints a page of warnings for every camera index that is not there
        os.environ.setdefault("OPENCV_LOG_LEVEL", "OFF")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # its FFmpeg's `[tcp @ 0x...]` lines: quiet
        logging.getLogger("py.warnings").setLevel(logging.ERROR)  # shown with --debug
    from fercam.apps.stopping import exit_code, stop_on_signals

    try:
        with stop_on_signals():
            return _dispatch(args)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM or SIGHUP: outputs were finished on the way out
        code = exit_code()
        print(f"fercam: stopped by {signal.Signals(code - 128).name}", file=sys.stderr)
        return code
    except Exception as exc:  # the one place that turns any failure into one line
        log.debug("failed", exc_info=True)  # the traceback, with --debug
        print(f"fercam: error: {one_line(exc)}", file=sys.stderr)
        return 1


def _dispatch(args) -> int:
    from fercam.apps import commands, model_commands

    handlers = {
        None: commands.tray,
        "run": commands.run,
        "devices": commands.devices,
        "window": commands.window,
        "doctor": commands.doctor,
        "train": model_commands.train,
        "evaluate": model_commands.evaluate,
        "analyze": commands.analyze,
        "bench": commands.bench,
    }
    return handlers[args.command](args)
