"""`fercam analyze`: the offline pipeline over recordings, with timelines, summaries and plots.

Each input gets its own folder: annotated.mp4 (original sound kept), timeline.csv,
body_timeline.csv, summary.json, timeline.png, distribution.png, and voice_timeline.csv when it has sound.
The folder is built under a temporary name and renamed when complete (replacing only an earlier
result of FER Cam's: a folder of the user's is never touched, the result goes to NAME-2), and one run
at a time may write into an output folder. Times are the media's own (each frame's presentation time).
Ctrl-C, SIGTERM or SIGHUP stops early, in the frames or in the voice stage, and still writes everything
up to one point in the media, every output cut there (summary.json says "interrupted" and
"stopped_at_s"; a stop in the frames stage skips the voice, which would first voice all the sound before
it); inputs not yet started are reported. The stages: `frames.py` (faces, body, video), `speakers.py` (who
speaks, beside the faces) and `sound.py` (voice); this module runs them per input and over all the inputs.
"""

from __future__ import annotations

import csv
import io
import logging
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, wait
from functools import partial
from pathlib import Path

from fercam.apps.analyze.frames import MediaClock, run_frames
from fercam.apps.analyze.inputs import AUDIO_SUFFIXES, collect_inputs, out_dirs
from fercam.apps.analyze.outputs import OutputError, OutputLock, Staging, remove_leftovers, write_json_atomic
from fercam.apps.analyze.report import (
    TimelineWriter,
    plot_distribution,
    plot_photo,
    plot_timelines,
    summarize_faces,
    summarize_photo,
)
from fercam.apps.analyze.results import DEFAULT_OPTIONS, InputResult, Options
from fercam.apps.analyze.sound import analyze_voice, voice_summary
from fercam.apps.analyze.speakers import (
    SpeakingStage,
    draw_speaking,
    own_windows,
    speaking_problem,
    summarize_speakers,
    write_voice_timeline,
)
from fercam.apps.stopping import stop_on_signals, stop_requested, worker_init
from fercam.body.timeline import BodyTimelineWriter
from fercam.errors import one_line
from fercam.files import SHARED, write_atomic
from fercam.media import NoVideoError, copy_audio_track, has_audio
from fercam.pictures import ImageSource
from fercam.source_specs import STREAM_SCHEMES, path_problem
from fercam.sources import open_source

log = logging.getLogger(__name__)


def analyze_inputs(
    inputs: list[str], out: str | Path, options: Options = DEFAULT_OPTIONS, *, jobs: int = 0
) -> list[InputResult]:
    """Analyse every input; a bad input is reported in its result and the others still complete."""
    if options.every < 1:
        raise ValueError("--every must be 1 or more")
    items = collect_inputs(inputs)
    if not items:
        raise ValueError("no inputs to analyse")
    out = Path(out)
    if os.path.lexists(out) and not out.is_dir():
        raise OutputError(f"-o {out} is a file, not a folder: choose a folder for the results")
    with OutputLock(out), stop_on_signals(cooperative=True):
        remove_leftovers(out)
        folders = out_dirs([item.spec for item in items], out)
        tasks = [(item.spec, folder) for item, folder in zip(items, folders) if not item.error]
        jobs = max(1, min(jobs or os.cpu_count() or 1, len(tasks)))
        done = iter(_in_process(tasks, options) if jobs == 1 else _in_pool(tasks, options, jobs))
        return [InputResult(item.spec, error=item.error) if item.error else next(done) for item in items]


def _not_started(spec: str) -> InputResult:
    return InputResult(spec, error="not analysed: the run was interrupted first", interrupted=True)


def _in_process(tasks: list[tuple[str, Path]], options: Options) -> list[InputResult]:
    return [_not_started(spec) if stop_requested() else try_analyze(spec, folder, options) for spec, folder in tasks]


def _in_pool(tasks: list[tuple[str, Path]], options: Options, jobs: int) -> list[InputResult]:
    """Inputs on `jobs` processes. On a stop request this process sets `stop`: each running input finishes
    its outputs at its next frame, and the inputs not started are cancelled."""
    # Workers start from a fresh process, never a fork of this one: a fork copies models whose worker threads it
    # does not copy, and freeing one there crashes (seen in a test process that had analysed in-process before).
    context = multiprocessing.get_context("spawn" if os.name == "nt" else "forkserver")
    stop = context.Event()
    pool = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=worker_init, initargs=(stop,))
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
        return InputResult(spec, error=one_line(exc))


def try_analyze(spec: str, out_dir: Path, options: Options, position: int = 0) -> InputResult:
    try:
        return analyze_one(spec, out_dir, options, position=position)
    except Exception as exc:  # one bad input must not stop the others
        log.info("skipped %s: %s", spec, exc)
        return InputResult(spec, error=one_line(exc))


def analyze_one(spec: str, out_dir: Path, options: Options = DEFAULT_OPTIONS, *, position: int = 0) -> InputResult:
    """One input into `out_dir`, which appears only once complete (replacing an older result)."""
    if spec.lower().startswith(STREAM_SCHEMES) and not options.duration:
        raise ValueError(f"{spec}: a stream needs --duration S")
    notes, source = [], None
    if not spec.lower().startswith(STREAM_SCHEMES) and (problem := path_problem(spec)):
        raise ValueError(problem)
    if Path(spec).suffix.lower() in AUDIO_SUFFIXES:
        build = partial(_analyze_audio_only, options=options, position=position, notes=notes)
    else:  # opened before staging: a missing or unreadable input leaves nothing behind
        try:
            source = open_source(spec)
        except NoVideoError as exc:
            if not exc.has_sound:
                raise
            notes.append("no video track: its sound was analysed")
            build = partial(_analyze_audio_only, options=options, position=position, notes=notes)
        else:
            build = partial(_analyze_video, MediaClock(source), options=options, position=position)
    try:
        staging = Staging(out_dir)
    except BaseException:
        if source is not None:
            source.close()
        raise
    try:
        result = build(spec, staging.path)
    except BaseException:
        staging.discard()
        raise
    staging.publish()
    result.out_dir = str(out_dir)
    return result


def _analyze_video(clock: MediaClock, spec: str, folder: Path, *, options: Options, position: int) -> InputResult:
    result = InputResult(spec, out_dir=str(folder))
    speaking = SpeakingStage(spec, speaking_problem(spec, clock, options.every))  # before the timeline: its column
    timeline = TimelineWriter(folder / "timeline.csv", speaking)
    body = BodyTimelineWriter(folder / "body_timeline.csv")
    video = options.video and not isinstance(clock.source, ImageSource)
    start = time.perf_counter()
    try:
        run_frames(clock, folder, (speaking, timeline, body), result, options, video, position)
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        result.frames_s = time.perf_counter() - start
        clock.close()
        for writer in (speaking, timeline, body):
            writer.close()
    if getattr(clock.source, "problem", ""):  # damaged or cut: said in the summary line and summary.json
        result.notes.append(clock.source.problem)
    end = clock.end_of(result.frames)  # where the outputs end, in media time
    if options.duration:
        end = min(end, options.duration)
    cut = result.interrupted or bool(options.duration)  # else the sound runs its whole length, even past the video
    voice = None
    if result.interrupted:  # stopped in the frames stage: voicing all the sound before the stop would hold it up
        has_sound = not spec.lower().startswith(STREAM_SCHEMES) and has_audio(spec)
        result.notes += ["voice skipped: the run was stopped in the frame stage"] if has_sound else []
    else:
        voice = analyze_voice(spec, result, options, position, until_s=end if cut else None)
        has_sound = voice is not None
    if result.interrupted and voice is not None and voice.until < end:  # stopped in the voice stage: all end there
        end, cut = voice.until, True
        result.frames = sum(t < end for t in clock.times[: result.frames])
        for path in (folder / "timeline.csv", folder / "body_timeline.csv"):
            cut_csv(path, end)
        timeline.rows = [row for row in timeline.rows if row[0] < end]
        body.rows = [row for row in body.rows if row[0] < end]
        speaking.cut(end)
    owners = own_windows(voice.windows, speaking.rows, timeline.rows) if voice else []
    if voice is not None:  # each window with its speaker
        write_voice_timeline(voice.windows, owners, folder / "voice_timeline.csv")
    video_file = folder / "annotated.mp4"
    if video_file.exists() and has_sound:  # the sound kept, cut where the pictures stop
        copy_audio_track(spec, video_file, until_s=end if cut else None, video_start_s=clock.times[0])
    if isinstance(clock.source, ImageSource) and result.frames == 1:  # a photo: no times to summarise
        faces = summarize_photo(timeline.rows)
        result.faces = len(faces)
        _write_summary(spec, folder, result, None, faces, voice, speaking=speaking.record())
        plot_photo(timeline.rows, folder / "timeline.png", body=body.rows, unsure_below=_face_threshold())
        return result
    analysed = clock.times[: result.frames : options.every]
    faces = summarize_faces(timeline.rows, analysed, end)
    result.faces = len(faces)
    summarize_speakers(faces, speaking, voice, owners, timeline.rows)
    sound_end = voice.until if voice is not None and not cut else end  # sound may run past the last picture
    duration = max(end, sound_end)
    _write_summary(spec, folder, result, duration, faces, voice, speaking=speaking.record())
    plot_timelines(
        timeline.rows,
        folder / "timeline.png",
        voice=voice and voice.windows,
        duration=duration,
        body=body.rows,
        unsure_below=_face_threshold(),
        speaking=lambda ax, face_id: draw_speaking(ax, face_id, speaking, voice and voice.windows, owners),
    )
    if faces:
        plot_distribution(faces, folder / "distribution.png")
    return result


def _face_threshold() -> float:
    """The confidence under which the video says "unsure" about a face (the shipped combined reading's)."""
    from fercam.combined import Combiner

    return Combiner.load().unsure_below


def cut_csv(path: Path, until_s: float) -> None:
    """Keep the header and the rows whose first column (a time in seconds) is before `until_s`."""
    if not path.exists():
        return
    with path.open(newline="", encoding="utf-8") as file:
        rows = list(csv.reader(file))
    kept = rows[:1] + [row for row in rows[1:] if row and float(row[0]) < until_s]
    text = io.StringIO(newline="")
    csv.writer(text).writerows(kept)
    write_atomic(path, text.getvalue(), mode=SHARED)


def _write_summary(
    spec: str, folder: Path, result: InputResult, end: float | None, faces: dict, voice, *, speaking=None
) -> None:
    """`end` None: a photo (no duration); `speaking` (who speaks) None: a sound without pictures (no faces)."""
    summary = {"input": spec, "frames": result.frames}
    if end is None:
        summary["photo"] = True
    else:
        summary["duration_s"] = round(end, 3)  # media time analysed: the file's own duration when read whole
    summary["interrupted"] = result.interrupted
    if result.interrupted and end is not None:
        summary["stopped_at_s"] = round(end, 3)  # every output (video, sound, timelines) ends here
    if speaking is not None:
        summary["unsure_below"] = _face_threshold()  # timeline.csv's `unsure`: a confidence under this
    summary["faces"] = faces
    if speaking is not None:
        summary["speaking"] = speaking
    if voice is not None:
        summary["voice"] = voice_summary(voice)
    elif skipped := [note for note in result.notes if note.startswith("voice skipped")]:
        summary["voice"] = {"error": skipped[-1]}
    if result.notes:
        summary["notes"] = list(result.notes)
    write_json_atomic(folder / "summary.json", summary)


def _analyze_audio_only(spec: str, out_dir: Path, *, options: Options, position: int, notes: list[str]) -> InputResult:
    if spec.lower().startswith(STREAM_SCHEMES):  # `analyze_voice` reads files only
        raise ValueError(f"{spec}: the sound of a stream is not analysed: save it to a file and analyse that")
    result = InputResult(spec, out_dir=str(out_dir), notes=notes)
    voice = analyze_voice(spec, result, options, position, until_s=options.duration or None, audio_only=True)
    if voice is None:
        raise ValueError(result.notes[-1])
    write_voice_timeline(voice.windows, [None] * len(voice.windows), out_dir / "voice_timeline.csv")  # no faces
    _write_summary(spec, out_dir, result, voice.until, {}, voice)
    plot_timelines([], out_dir / "timeline.png", voice=voice.windows, duration=voice.until)
    return result
