"""Side by side, in one run: FER Cam's offline pipeline against the `fer` package's default pipeline.

FER Cam runs in this interpreter (MTCNN-lite detection + our emotion CNN):
  pipeline  `run_offline` exactly as `fercam analyze` runs it (decode, detect, classify, track,
            annotate), into a sink that discards the annotated frames: no files written.
  e2e       `fercam.apps.analyze.analyze.analyze_one` into a temp folder: model loading, annotated.mp4,
            timeline.csv, voice (if the clip has sound), summary and plots, all timed.
`fer` (Haar cascade + its shipped mini-Xception, `FER(mtcnn=False)`) runs in its own
environment through `--fer-python`, timed inside that process; interpreter, TensorFlow and
model start-up is reported apart from the per-frame figure:
  fer video `fer.classes.Video.analyze(frequency=1)` with frame/video saving and display off
            (it still annotates each frame and returns a pandas frame).
  fer loop  cv2 reads every frame, `detect_emotions(frame)` on each: no annotation.

Usage:
  .venv/bin/python tools/compare_fer.py [CLIP] --fer-python /root/fer-env/bin/python [--repeat N] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIP = ROOT.parent / "shared" / "media" / "fer_woman2.mp4"
RESULT_MARK = "COMPARE_FER_RESULT "

# Runs in the `fer` environment: only calls fer's public classes, timing from inside.
FER_CHILD = r"""
import json, sys, tempfile, time
spawned, clip, modes, cv_threads = float(sys.argv[1]), sys.argv[2], sys.argv[3].split(","), sys.argv[4]
import cv2
if cv_threads:  # only when asked: fer's default leaves OpenCV's thread count alone
    cv2.setNumThreads(int(cv_threads))
from fer.classes import Video
from fer.fer import FER

detector = FER(mtcnn=False)
result = {"startup_s": time.time() - spawned, "runs": []}


def run_video():
    with tempfile.TemporaryDirectory() as tmp:
        video = Video(clip, outdir=tmp)
        start, cpu = time.perf_counter(), time.process_time()
        rows = video.analyze(detector, display=False, output="pandas", frequency=1, save_frames=False,
                             save_video=False, annotate_frames=True, zip_images=False)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"frames": video.frameCount, "seconds": seconds, "cpu_seconds": cpu, "face_frames": len(rows),
            "multi_face_frames": None}


def run_loop():
    start, cpu = time.perf_counter(), time.process_time()
    capture = cv2.VideoCapture(clip)
    frames = face_frames = multi = 0
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        faces = detector.detect_emotions(frame)
        frames, face_frames, multi = frames + 1, face_frames + bool(faces), multi + (len(faces) > 1)
    capture.release()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"frames": frames, "seconds": seconds, "cpu_seconds": cpu, "face_frames": face_frames,
            "multi_face_frames": multi}


for mode in modes:
    result["runs"].append(dict({"video": run_video, "loop": run_loop}[mode](), mode=mode))
print("COMPARE_FER_RESULT " + json.dumps(result), flush=True)
"""


@dataclass
class Run:
    name: str
    round: int
    frames: int
    seconds: float
    cpu_seconds: float
    face_frames: int | None = None
    multi_face_frames: int | None = None

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_ms_per_frame(self) -> float:
        """CPU time of the process (all its threads) per frame: much less sensitive to other load than fps."""
        return 1000 * self.cpu_seconds / self.frames if self.frames else 0.0

    @property
    def face_share(self) -> float | None:
        return None if self.face_frames is None or not self.frames else self.face_frames / self.frames

    def as_dict(self) -> dict:
        rounded = {
            "fps": round(self.fps, 2),
            "seconds": round(self.seconds, 3),
            "cpu_seconds": round(self.cpu_seconds, 3),
            "cpu_ms_per_frame": round(self.cpu_ms_per_frame, 2),
            "face_share": _round(self.face_share),
        }
        return dict(asdict(self), **rounded)


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


class DiscardSink:
    """Takes the annotated frames and drops them, so no encoding or file writing is timed."""

    def __init__(self) -> None:
        self.frames = 0

    def send(self, _image) -> None:
        self.frames += 1

    def close(self) -> None:
        pass


def _import_fercam():
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import fercam.apps.analyze.analyze
    import fercam.apps.app
    import fercam.pipeline
    import fercam.settings
    import fercam.sources

    return fercam


def fercam_startup() -> float:
    """Seconds to import FER Cam and load its models (what precedes the first frame)."""
    start = time.perf_counter()
    fercam = _import_fercam()
    fercam.pipeline.make_face_reader(fercam.settings.Settings())
    return time.perf_counter() - start


def time_fercam_pipeline(clip: Path, round_no: int) -> Run:
    """`fercam analyze`'s per-frame path (decode, detect, classify, track, annotate), nothing written."""
    fercam = _import_fercam()
    settings = fercam.settings.Settings()
    analyzer = fercam.pipeline.make_face_reader(settings)  # fresh tracker; model loading is not timed here
    counts = {"face": 0, "multi": 0}

    def on_analysis(analysis, _frame) -> None:
        counts["face"] += bool(analysis.faces)
        counts["multi"] += len(analysis.faces) > 1

    start, cpu = time.perf_counter(), time.process_time()
    source = fercam.sources.VideoFileSource(clip)
    try:
        frames = fercam.pipeline.run_offline(source, analyzer, [DiscardSink()], settings, on_analysis=on_analysis)
    finally:
        source.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return Run("fercam pipeline", round_no, frames, seconds, cpu, counts["face"], counts["multi"])


def time_fercam_e2e(clip: Path, round_no: int) -> Run:
    """The whole of `fercam analyze` on one clip, video output included, into a temp folder."""
    fercam = _import_fercam()
    with tempfile.TemporaryDirectory() as tmp, contextlib.redirect_stderr(io.StringIO()):  # no progress bar
        start, cpu = time.perf_counter(), time.process_time()
        options = fercam.apps.analyze.results.Options(progress=False)
        result = fercam.apps.analyze.analyze.analyze_one(str(clip), Path(tmp) / clip.stem, options)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
        written = sorted(p.name for p in (Path(tmp) / clip.stem).iterdir())
    if "annotated.mp4" not in written:
        raise RuntimeError(f"fercam analyze wrote no annotated.mp4 (wrote {written})")
    return Run("fercam e2e", round_no, result.frames, seconds, cpu)  # CPU of child processes (ffmpeg) not counted


def time_fer(
    fer_python: str, clip: Path, modes: list[str], round_no: int, cv_threads: int | None = None
) -> tuple[float, list[Run]]:
    """fer's pipelines in their own interpreter; returns (start-up seconds, runs)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory() as tmp:  # fer may drop files in its working directory
        spawned = time.time()
        proc = subprocess.run(
            [fer_python, "-c", FER_CHILD, repr(spawned), str(clip), ",".join(modes), str(cv_threads or "")],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
        )
    marked = [line for line in proc.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if proc.returncode or not marked:
        raise RuntimeError(f"fer run failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    data = json.loads(marked[-1][len(RESULT_MARK) :])
    runs = [
        Run(
            f"fer {r['mode']}",
            round_no,
            r["frames"],
            r["seconds"],
            r["cpu_seconds"],
            r["face_frames"],
            r["multi_face_frames"],
        )
        for r in data["runs"]
    ]
    return data["startup_s"], runs


METRIC_LABELS = {"fps": "fps", "cpu": "CPU time per frame"}
PAIRS = {
    "pipeline/fer_video": ("fercam pipeline", "fer video"),
    "pipeline/fer_loop": ("fercam pipeline", "fer loop"),
    "e2e/fer_video": ("fercam e2e", "fer video"),
}


def _speedup(ours: Run, theirs: Run, metric: str) -> float | None:
    """How many times faster FER Cam is: by wall-clock fps, or by CPU time per frame (None: no figure)."""
    num, den = (ours.fps, theirs.fps) if metric == "fps" else (theirs.cpu_ms_per_frame, ours.cpu_ms_per_frame)
    return round(num / den, 2) if num and den else None


def _best(runs: list[Run], name: str, metric: str) -> Run | None:
    named = [r for r in runs if r.name == name]
    key = (lambda r: r.fps) if metric == "fps" else (lambda r: -r.cpu_ms_per_frame)
    return max(named, key=key) if named else None


def ratios(runs: list[Run]) -> dict[str, dict]:
    """FER Cam over fer: best run against best run, and per round (the two ran back to back)."""
    out: dict[str, dict] = {}
    for key, (ours, theirs) in PAIRS.items():
        for metric in ("fps", "cpu"):
            a, b = _best(runs, ours, metric), _best(runs, theirs, metric)
            best = _speedup(a, b, metric) if a and b else None
            if best is None:
                continue
            paired = [_round_ratio(runs, n, ours, theirs, metric) for n in sorted({r.round for r in runs})]
            out.setdefault(key, {})[metric] = {"best": best, "per_round": [p for p in paired if p is not None]}
    return out


def _round_ratio(runs: list[Run], round_no: int, ours: str, theirs: str, metric: str) -> float | None:
    a = next((r for r in runs if r.round == round_no and r.name == ours), None)
    b = next((r for r in runs if r.round == round_no and r.name == theirs), None)
    return _speedup(a, b, metric) if a and b else None


def measure(args: argparse.Namespace) -> dict:
    clip = Path(args.clip).resolve()
    load_before = os.getloadavg()
    modes = ["video"] + ([] if args.no_loop else ["loop"])
    startup = {"fercam_s": round(fercam_startup(), 2), "fer_s": []}
    runs: list[Run] = []
    for round_no in range(1, args.repeat + 1):  # interleaved, so background load hits both alike
        runs.append(time_fercam_pipeline(clip, round_no))
        if args.fer_python:
            fer_startup, fer_runs = time_fer(args.fer_python, clip, modes, round_no, args.fer_cv_threads)
            startup["fer_s"].append(round(fer_startup, 2))
            runs += fer_runs
        if not args.no_e2e:
            runs.append(time_fercam_e2e(clip, round_no))
    return {
        "clip": str(clip),
        "cpus": os.cpu_count(),
        "fer_cv_threads": args.fer_cv_threads or "default",
        "loadavg_before": [round(x, 2) for x in load_before],
        "loadavg_after": [round(x, 2) for x in os.getloadavg()],
        "startup": startup,
        "runs": [r.as_dict() for r in runs],
        "ratios": ratios(runs),
    }


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def print_table(report: dict) -> None:
    print(
        f"clip: {report['clip']}  ({report['cpus']} CPUs; load avg before {report['loadavg_before'][0]}, "
        f"after {report['loadavg_after'][0]}; fer's OpenCV threads: {report['fer_cv_threads']})"
    )
    print(
        f"{'pipeline':<16} {'round':>5} {'frames':>6} {'seconds':>8} {'fps':>7} {'cpu ms/f':>8} {'face %':>7} "
        f"{'>1 face':>7}"
    )
    for r in report["runs"]:
        share = None if r["face_share"] is None else 100 * r["face_share"]
        print(
            f"{r['name']:<16} {r['round']:>5} {r['frames']:>6} {r['seconds']:>8.2f} {r['fps']:>7.1f} "
            f"{r['cpu_ms_per_frame']:>8.1f} {_fmt(share, '.1f'):>7} {_fmt(r['multi_face_frames'], 'd'):>7}"
        )
    fer_startup = ", ".join(f"{s:.1f}" for s in report["startup"]["fer_s"]) or "-"
    print(
        f"start-up (not in fps): fercam {report['startup']['fercam_s']:.1f} s (import + models); "
        f"fer {fer_startup} s (interpreter + TensorFlow + models)"
    )
    for key, by_metric in report["ratios"].items():
        parts = [
            f"{ratio['best']:.2f}x {METRIC_LABELS[metric]} (per round {ratio['per_round']})"
            for metric, ratio in by_metric.items()
        ]
        print(f"FER Cam speed-up {key}: " + ", ".join(parts))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("clip", nargs="?", default=str(DEFAULT_CLIP), help="video clip (default: %(default)s)")
    parser.add_argument("--fer-python", help="python of an environment with fer installed (omit: FER Cam only)")
    parser.add_argument(
        "--fer-cv-threads", type=int, help="cv2.setNumThreads in the fer process (default: leave fer's default)"
    )
    parser.add_argument("--repeat", type=int, default=1, help="rounds, each running every pipeline once")
    parser.add_argument("--no-e2e", action="store_true", help="skip the full `fercam analyze` run")
    parser.add_argument("--no-loop", action="store_true", help="skip fer's detect_emotions loop")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be 1 or more")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    report = measure(args)
    if args.json:
        print(json.dumps(report))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
