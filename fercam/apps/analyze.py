"""`fercam analyze`: the offline pipeline over recordings, with timelines, summaries and plots.

Each input gets its own folder: annotated.mp4 (original sound kept), timeline.csv,
summary.json, timeline.png, distribution.png, and voice_timeline.csv when it has sound.
Ctrl-C stops early but still writes everything for the frames done so far.
"""

from __future__ import annotations

import json
import logging
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fercam.apps.report import TimelineWriter, plot_distribution, plot_timelines, summarize_faces
from fercam.sources import IMAGE_SUFFIXES, STREAM_SCHEMES, ImageSource, open_source

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac"}
VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}


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


def expand_inputs(inputs: list[str]) -> list[str]:
    """A folder stands for the media files in it (sorted); everything else is taken as given."""
    known = IMAGE_SUFFIXES | AUDIO_SUFFIXES | VIDEO_SUFFIXES
    expanded = []
    for spec in inputs:
        path = Path(spec)
        if path.is_dir():
            expanded += [str(p) for p in sorted(path.iterdir()) if p.suffix.lower() in known]
        else:
            expanded.append(spec)
    return expanded


def _out_dirs(inputs: list[str], out: Path) -> list[Path]:
    """One folder per input, named after it, made unique when two inputs share a name."""
    seen: dict[str, int] = {}
    dirs = []
    for spec in inputs:
        name = Path(spec.split("?")[0].rstrip("/")).stem or "stream"
        seen[name] = seen.get(name, 0) + 1
        dirs.append(out / (name if seen[name] == 1 else f"{name}-{seen[name]}"))
    return dirs


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
    out.mkdir(parents=True, exist_ok=True)
    tasks = [
        (spec, d, every, duration, video, detector, i) for i, (spec, d) in enumerate(zip(specs, _out_dirs(specs, out)))
    ]
    jobs = min(jobs or os.cpu_count() or 1, len(tasks))
    if jobs == 1:
        return [_safe_analyze(*task) for task in tasks]
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(_safe_analyze, *zip(*tasks)))


def _safe_analyze(
    spec: str, out_dir: Path, every: int, duration: float, video: bool, detector: str, position: int = 0
) -> InputResult:
    try:
        return analyze_one(
            spec, out_dir, every=every, duration=duration, video=video, detector=detector, position=position
        )
    except Exception as exc:  # one bad input must not stop the others
        log.info("skipped %s: %s", spec, exc)
        return InputResult(spec, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def analyze_one(
    spec: str,
    out_dir: Path,
    *,
    every: int = 1,
    duration: float = 0,
    video: bool = True,
    detector: str = "mtcnn",
    position: int = 0,
) -> InputResult:
    if spec.lower().startswith(STREAM_SCHEMES) and not duration:
        raise ValueError(f"{spec}: a stream needs --duration S")
    if Path(spec).suffix.lower() in AUDIO_SUFFIXES:
        return _analyze_audio_only(spec, out_dir)
    source = open_source(spec)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = InputResult(spec, out_dir=str(out_dir))
    timeline = TimelineWriter(out_dir / "timeline.csv")
    frame_interval = every / source.fps if source.fps else 1.0  # before close(): a released capture has no fps
    try:
        _run_frames(
            source,
            out_dir,
            timeline,
            result,
            every,
            duration,
            video and not isinstance(source, ImageSource),
            detector,
            position,
        )
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        source.close()
        timeline.close()
    _finish(spec, out_dir, result, timeline.rows, frame_interval)
    return result


def _run_frames(
    source,
    out_dir: Path,
    timeline: TimelineWriter,
    result: InputResult,
    every: int,
    duration: float,
    video: bool,
    detector: str,
    position: int,
) -> int:
    """The offline pipeline over `source`; `result.frames` counts as it goes, so a Ctrl-C keeps the count."""
    from tqdm import tqdm

    from fercam.apps.app import make_analyzer
    from fercam.pipeline import run_offline
    from fercam.settings import Settings
    from fercam.sinks import VideoFileSink

    settings = Settings(detector=detector)
    total = getattr(source, "frame_count", None) or len(getattr(source, "paths", [])) or None
    progress = tqdm(total=total, unit="frame", desc=Path(source.name).stem[:20], position=position, leave=True)
    sinks = [_ProgressSink(progress, result)]
    if video:
        sinks.insert(0, VideoFileSink(out_dir / "annotated.mp4", fps=source.fps))
    try:
        return run_offline(
            source,
            make_analyzer(settings),
            sinks,
            settings,
            every=every,
            max_seconds=duration,
            on_analysis=timeline.write,
        )
    finally:
        for sink in sinks:
            sink.close()


class _ProgressSink:
    """Counts frames into a tqdm bar (rate and ETA come with it) and into the input's result."""

    closed = False

    def __init__(self, bar, result: InputResult) -> None:
        self.bar, self.result = bar, result

    def send(self, _image) -> None:
        self.bar.update(1)
        self.result.frames += 1

    def close(self) -> None:
        self.bar.close()


def _finish(spec: str, out_dir: Path, result: InputResult, rows, frame_interval: float) -> None:
    """Sound, summary and plots: run even after Ctrl-C so partial results are complete files."""
    from fercam.media import copy_audio_track

    voice = _voice(spec, out_dir, result)
    video_file = out_dir / "annotated.mp4"
    if video_file.exists() and voice is not None:
        copy_audio_track(spec, video_file)
    faces = summarize_faces(rows, frame_interval)
    result.faces = len(faces)
    summary = {"input": spec, "frames": result.frames, "interrupted": result.interrupted, "faces": faces}
    if voice is not None:
        summary["voice"] = _voice_summary(voice)
    elif result.notes:
        summary["voice"] = {"error": result.notes[-1]}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_timelines(rows, out_dir / "timeline.png", voice=voice)
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
    out_dir.mkdir(parents=True, exist_ok=True)
    result = InputResult(spec, out_dir=str(out_dir))
    voice = _voice(spec, out_dir, result, audio_only=True)
    if voice is None:
        raise ValueError(result.notes[-1])
    summary = {"input": spec, "faces": {}, "voice": _voice_summary(voice)}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    plot_timelines([], out_dir / "timeline.png", voice=voice)
    return result
