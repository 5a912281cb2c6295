"""`fercam bench --analyze`: `fercam analyze`'s pipeline over one recording, timed stage by stage.

A `StageClock` wraps each stage of the offline pipeline (decode, detect, classify, second opinion, track, the
writers, voice) and sums the CPU time spent in it. Kept apart from `parts` (the live bench's camera, backend and
per-model timers): this measures the offline analysis, and `tools/second_opinion_refresh.py` reuses it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


class StageClock:
    """CPU seconds spent in each named stage, summed over a run: on a shared machine far steadier than wall time.
    The calling thread's CPU: `run_offline` runs stages on two threads at once. The work of the models' and
    FFmpeg's own worker threads (decoding, encoding) is not in any stage: the profile counts it as "other"."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}

    def timed(self, stage: str, call):
        """`call`, adding its time to `stage` each time it is called."""

        def run(*args, **kwargs):
            start = time.thread_time()
            try:
                return call(*args, **kwargs)
            finally:
                self.spent[stage] = self.spent.get(stage, 0.0) + time.thread_time() - start

        return run

    def wrap(self, stage: str, inner, *methods: str):
        """A stand-in for `inner` whose `methods` are timed as `stage`; every other attribute is `inner`'s."""
        return _Timed(inner, {name: self.timed(stage, getattr(inner, name)) for name in methods})


class _Timed:
    def __init__(self, inner, timed: dict) -> None:
        self.__dict__.update(timed)
        self._inner = inner

    def __getattr__(self, name):
        return getattr(self._inner, name)


# `fercam analyze`'s stages in the order a frame meets them (voice runs over the sound afterwards).
ANALYZE_STAGES = ("decode", "detect", "classify", "second opinion", "track", "body", "timeline", "write video", "voice")


def profile_analyze(spec: str, *, refresh="shipped", detector: str = "mtcnn", on_analysis=None) -> dict:
    """`fercam analyze`'s pipeline over one recording (the same reader, writers, annotated video and voice, into
    a temporary folder), timed: frames per second (wall) and CPU milliseconds per frame in each stage ("other":
    crops, alignment, overlay, bookkeeping, and the models' and FFmpeg's worker threads). `refresh`: the second
    opinion's `RefreshRule` in place of the app's own ("shipped"); the app's views either way."""
    import tempfile

    from fercam.apps.analyze.analyze import InputResult, Options
    from fercam.apps.analyze.report import TimelineWriter
    from fercam.apps.analyze.sound import analyze_voice
    from fercam.body.timeline import BodyTimelineWriter
    from fercam.pipeline import ReaderConfig, make_face_reader, run_offline
    from fercam.settings import Settings
    from fercam.sinks import VideoFileSink
    from fercam.sources import open_source

    clock, settings = StageClock(), Settings(detector=detector)
    reader = make_face_reader(ReaderConfig(detector=detector))  # as analyze reads: its models, views and threads
    if refresh != "shipped":
        reader.classifier.refresh = refresh
    reading = reader.classifier
    reading.classifier = clock.wrap("classify", reading.classifier, "predict_faces")
    reading.second = clock.wrap("second opinion", reading.second, "predict_aligned", "read_aligned")
    reader.detector = clock.wrap("detect", reader.detector, "detect", "detect_near")
    reader.tracker = clock.wrap("track", reader.tracker, "update")
    source = open_source(spec)
    source.read = clock.timed("decode", source.read)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        timeline, body = TimelineWriter(folder / "timeline.csv"), BodyTimelineWriter(folder / "body_timeline.csv")
        write_timeline, write_body = clock.timed("timeline", timeline.write), clock.timed("body", body.write)
        video = VideoFileSink(folder / "annotated.mp4", fps=source.fps)
        video.send = clock.timed("write video", video.send)

        faces = [0]

        def analysed(analysis, frame) -> None:
            faces[0] += len(analysis.faces)
            write_timeline(analysis, frame)
            write_body(analysis, frame)
            if on_analysis:
                on_analysis(analysis, frame)

        start, cpu_start = time.perf_counter(), time.process_time()
        try:
            frames = run_offline(source, reader, [video], settings, on_analysis=analysed)
        finally:
            video.close()
            timeline.close()
            body.close()
            source.close()
        frames_s, frames_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        analyze_voice(spec, InputResult(spec), Options(progress=False), 0)
        voice_s = time.perf_counter() - start - frames_s
        clock.spent["voice"] = time.process_time() - cpu_start - frames_cpu_s
    n = max(1, frames)
    per_frame = {stage: round(1000 * clock.spent.get(stage, 0.0) / n, 2) for stage in ANALYZE_STAGES}
    per_frame["other"] = round(1000 * frames_cpu_s / n - sum(v for k, v in per_frame.items() if k != "voice"), 2)
    return {
        "input": spec,
        "frames": frames,
        "fps": round(frames / frames_s, 1) if frames_s > 0 else 0.0,  # the frame stage, as analyze's summary says
        "fps_with_voice": round(frames / (frames_s + voice_s), 1),
        "cpu_ms_per_frame": round(1000 * frames_cpu_s / n, 2),
        "cpu_ms_per_frame_by_stage": per_frame,
        "faces_read": faces[0],  # one a face a frame
        "second_opinions": reading.second_reads,
        "second_opinions_per_s": round(reading.second_reads / frames_s, 1) if frames_s > 0 else 0.0,
        "second_opinion_reasons": reading.refresh_reasons,
    }


def print_analyze_profile(spec: str, detector: str, *, as_json: bool) -> int:
    """`fercam bench --analyze CLIP`: `fercam analyze`'s pipeline on one recording, per stage."""
    from fercam.apps.bench.perfpage import machine

    result = profile_analyze(spec, detector=detector)
    if as_json:
        print(json.dumps(result))
        return 0
    stages = result["cpu_ms_per_frame_by_stage"]
    share = result["second_opinions"] / max(1, result["faces_read"])
    print(
        f"fercam bench --analyze {spec}: {result['frames']} frames at {result['fps']} fps "
        f"({result['fps_with_voice']} fps counting the voice stage)\n"
        f"  on {machine()}\n"
        f"  CPU ms a frame: {result['cpu_ms_per_frame']}: "
        + ", ".join(f"{k} {v}" for k, v in stages.items())
        + f"\n  second opinion on {result['second_opinions']} of {result['faces_read']} face readings ({share:.0%}), "
        f"{result['second_opinions_per_s']} a second; why: "
        + ", ".join(f"{k} {v}" for k, v in sorted(result["second_opinion_reasons"].items()))
    )
    return 0
