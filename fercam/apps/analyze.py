"""`fercam analyze`: the offline pipeline over recordings, with timelines, summaries and plots.

Each input gets its own folder: annotated.mp4 (original sound kept), timeline.csv,
body_timeline.csv, summary.json, timeline.png, distribution.png, and voice_timeline.csv when it has sound.
The folder is built under a temporary name and renamed when complete, and one run at a time
may write into an output folder. Ctrl-C, SIGTERM or SIGHUP stops early but still writes everything
for the frames done so far (summary.json says "interrupted"); inputs not yet started are reported.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path

from fercam.apps.inputs import AUDIO_SUFFIXES, collect_inputs, out_dirs
from fercam.apps.outputs import OutputLock, Staging, remove_leftovers, write_json_atomic
from fercam.apps.report import TimelineWriter, plot_distribution, plot_timelines, summarize_faces
from fercam.apps.stopping import check_stop, stop_on_signals, stop_requested, worker_init
from fercam.body.timeline import BodyTimelineWriter
from fercam.sources import STREAM_SCHEMES, ImageSource, open_source

log = logging.getLogger(__name__)


@dataclass
class InputResult:
    input: str
    out_dir: str = ""
    frames: int = 0
    faces: int = 0
    error: str = ""
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def summary_line(self) -> str:
        state = " (interrupted: partial results)" if self.interrupted else ""
        notes = "".join(f"; {n}" for n in self.notes)
        return f"{self.frames} frames, {self.faces} face id(s) -> {self.out_dir}{state}{notes}"


@dataclass(frozen=True)
class Options:
    every: int = 1
    duration: float = 0
    video: bool = True
    detector: str = "mtcnn"
    progress: bool = True  # a per-input frame bar; off where nobody watches (cluster tasks)


def expand_inputs(inputs: list[str]) -> list[str]:
    """Folders, globs and manifest CSVs expanded to the inputs they stand for."""
    return [item.spec for item in collect_inputs(inputs)]


def analyze_inputs(
    inputs: list[str],
    out: str | Path,
    *,
    every: int = 1,
    duration: float = 0,
    video: bool = True,
    detector: str = "mtcnn",
    jobs: int = 0,
) -> list[InputResult]:
    """Analyse every input; a bad input is reported in its result and the others still complete."""
    if every < 1:
        raise ValueError("--every must be 1 or more")
    specs = expand_inputs(inputs)
    if not specs:
        raise ValueError("no inputs to analyse")
    out = Path(out)
    options = Options(every, duration, video, detector)
    with OutputLock(out), stop_on_signals(cooperative=True):
        remove_leftovers(out)
        tasks = list(zip(specs, out_dirs(specs, out)))
        jobs = min(jobs or os.cpu_count() or 1, len(tasks))
        return _in_process(tasks, options) if jobs == 1 else _in_pool(tasks, options, jobs)


def _not_started(spec: str) -> InputResult:
    return InputResult(spec, error="not analysed: the run was interrupted first", interrupted=True)


def _in_process(tasks: list[tuple[str, Path]], options: Options) -> list[InputResult]:
    return [_not_started(spec) if stop_requested() else try_analyze(spec, folder, options) for spec, folder in tasks]


def _in_pool(tasks: list[tuple[str, Path]], options: Options, jobs: int) -> list[InputResult]:
    """Inputs on `jobs` processes. On a stop request this process sets `stop`: each running input finishes
    its outputs at its next frame, and the inputs not started are cancelled."""
    stop = multiprocessing.Event()
    pool = ProcessPoolExecutor(max_workers=jobs, initializer=worker_init, initargs=(stop,))
    futures = [pool.submit(try_analyze, spec, folder, options, i) for i, (spec, folder) in enumerate(tasks)]
    try:
        while wait(futures, timeout=0.2).not_done and not stop_requested():
            pass
        if stop_requested():
            stop.set()
            for future in futures:
                future.cancel()
    finally:
        pool.shutdown(wait=True)
    return [_outcome(future, spec) for future, (spec, _) in zip(futures, tasks)]


def _outcome(future, spec: str) -> InputResult:
    if future.cancelled():
        return _not_started(spec)
    try:
        return future.result()
    except Exception as exc:  # a worker that died (killed, out of memory) fails its input only
        return InputResult(spec, error=_one_line(exc))


def _one_line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__


def try_analyze(spec: str, out_dir: Path, options: Options, position: int = 0) -> InputResult:
    try:
        return analyze_one(spec, out_dir, **asdict(options), position=position)
    except Exception as exc:  # one bad input must not stop the others
        log.info("skipped %s: %s", spec, exc)
        return InputResult(spec, error=_one_line(exc))


def analyze_one(
    spec: str,
    out_dir: Path,
    *,
    every: int = 1,
    duration: float = 0,
    video: bool = True,
    detector: str = "mtcnn",
    progress: bool = True,
    position: int = 0,
) -> InputResult:
    """One input into `out_dir`, which appears only once complete (replacing an older result)."""
    options = Options(every, duration, video, detector, progress)
    if spec.lower().startswith(STREAM_SCHEMES) and not options.duration:
        raise ValueError(f"{spec}: a stream needs --duration S")
    if Path(spec).suffix.lower() in AUDIO_SUFFIXES:
        build = _analyze_audio_only
    else:  # opened before staging: a missing or unreadable input leaves nothing behind
        build = partial(_analyze_video, open_source(spec), options=options, position=position)
    staging = Staging(out_dir)
    try:
        result = build(spec, staging.path)
    except BaseException:
        staging.discard()
        raise
    staging.publish()
    result.out_dir = str(out_dir)
    return result


def _analyze_video(source, spec: str, folder: Path, *, options: Options, position: int) -> InputResult:
    result = InputResult(spec, out_dir=str(folder))
    timeline, body = TimelineWriter(folder / "timeline.csv"), BodyTimelineWriter(folder / "body_timeline.csv")
    fps = source.fps  # before close(): a released capture has no fps
    video = options.video and not isinstance(source, ImageSource)
    try:
        _run_frames(source, folder, (timeline, body), result, options, video, position)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        source.close()
        timeline.close()
        body.close()
    _finish(spec, folder, result, timeline.rows, options.every, fps, body.rows)
    return result


def _run_frames(source, out_dir, writers, result: InputResult, options: Options, video: bool, position: int) -> int:
    """The offline pipeline over `source`; `result.frames` counts as it goes, so a Ctrl-C keeps the count."""
    from tqdm import tqdm

    from fercam.pipeline import make_face_reader, run_offline
    from fercam.settings import Settings
    from fercam.sinks import VideoFileSink

    settings = Settings(detector=options.detector)
    total = source.frame_count or None
    name = Path(source.name).stem[:20]
    bar = tqdm(total=total, unit="frame", desc=name, position=position, leave=True, disable=not options.progress)
    sinks = [_ProgressSink(bar, result)]
    if video:
        sinks.insert(0, VideoFileSink(out_dir / "annotated.mp4", fps=source.fps))
    try:
        return run_offline(
            source,
            make_face_reader(settings),
            sinks,
            settings,
            every=options.every,
            max_seconds=options.duration,
            on_analysis=lambda analysis, frame: [writer.write(analysis, frame) for writer in writers],
        )
    finally:
        for sink in sinks:
            sink.close()


class _ProgressSink:
    """Counts frames into a tqdm bar and the input's result; in a pool worker, stops when the parent says so."""

    closed = False

    def __init__(self, bar, result: InputResult) -> None:
        self.bar, self.result = bar, result

    def send(self, _image) -> None:
        self.bar.update(1)
        self.result.frames += 1
        check_stop()  # the last sink of a frame: a stop here leaves video, timeline and count in step

    def close(self) -> None:
        self.bar.close()


def _finish(spec: str, out_dir: Path, result: InputResult, rows, every: int, fps: float, body=()) -> None:
    """Sound, summary and plots: run even after an interrupt so partial results are complete files."""
    from fercam.media import copy_audio_track

    voice = _voice(spec, out_dir, result)
    video_file = out_dir / "annotated.mp4"
    if video_file.exists() and voice is not None:
        # An interrupted video is shorter than the input: its sound must end with its last frame.
        copy_audio_track(spec, video_file, until_s=result.frames / fps if result.interrupted else None)
    faces = summarize_faces(rows, every / fps if fps else 1.0)
    result.faces = len(faces)
    summary = {
        "input": spec,
        "frames": result.frames,
        "duration_s": round(result.frames / fps, 3) if fps else 0,
        "interrupted": result.interrupted,
        "faces": faces,
    }
    if voice is not None:
        summary["voice"] = _voice_summary(voice)
    elif result.notes:
        summary["voice"] = {"error": result.notes[-1]}
    write_json_atomic(out_dir / "summary.json", summary)
    plot_timelines(rows, out_dir / "timeline.png", voice=voice, body=body)
    if faces:
        plot_distribution(faces, out_dir / "distribution.png")


def _voice(spec: str, out_dir: Path, result: InputResult, *, audio_only: bool = False):
    """The voice timeline of the input's sound, or None (no sound, or unusable sound: noted)."""
    from fercam.emotion import ModelError
    from fercam.media import has_audio
    from fercam.voice.audio import AudioError, load_audio
    from fercam.voice.classifier import load_voice_classifier, voice_timeline, write_voice_csv

    if spec.lower().startswith(STREAM_SCHEMES) or not (audio_only or has_audio(spec)):
        return None
    try:
        windows = voice_timeline(load_audio(spec), 16000, load_voice_classifier())
    except (AudioError, ModelError) as exc:  # the face outputs still complete without the voice
        result.notes.append(f"voice skipped: {exc}")
        return None
    write_voice_csv(windows, out_dir / "voice_timeline.csv")
    if not any(w.speech for w in windows):
        result.notes.append("no speech found in the sound track")
    return windows


def _voice_summary(windows) -> dict:
    from fercam.types import EMOTIONS

    spoken = [w for w in windows if w.speech]
    count = max(len(spoken), 1)
    shares = {name: round(sum(w.label == name for w in spoken) / count, 4) for name in (*EMOTIONS, "unsure")}
    named = {name: share for name, share in shares.items() if name in EMOTIONS and share > 0}
    return {
        "windows": len(windows),
        "speech_windows": len(spoken),
        "unsure_windows": sum(w.label == "unsure" for w in spoken),
        "dominant_emotion": max(named, key=named.get) if named else None,  # among windows the model is sure of
        "share_of_speech": shares if spoken else {},
    }


def _analyze_audio_only(spec: str, out_dir: Path) -> InputResult:
    result = InputResult(spec, out_dir=str(out_dir))
    voice = _voice(spec, out_dir, result, audio_only=True)
    if voice is None:
        raise ValueError(result.notes[-1])
    summary = {"input": spec, "faces": {}, "voice": _voice_summary(voice)}
    write_json_atomic(out_dir / "summary.json", summary)
    plot_timelines([], out_dir / "timeline.png", voice=voice)
    return result
