"""`fercam bench`: the real live pipeline on a webcam, or a clip replayed as a 30 fps camera, measured.

Frames go through the real `pyvirtualcam.Camera` into a counting backend, so the numbers include
everything a user's call app would wait for. `--matrix` runs the issue's scenarios, each in a fresh
process, `--soak S` runs one for S seconds watching memory and frame rate, and `--report FILE`
writes them as docs/PERFORMANCE.md with the machine named.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.apps.bench import listening
from fercam.apps.bench.goals import SCENARIOS, START_GOALS, WORDS, goals_for, met
from fercam.apps.bench.parts import (
    CountingBackend,
    TiledSource,
    TimedDetector,
    TimedReading,
    bench_model,
    current_rss_mb,
    format_model_report,
    mean,
    peak_rss_mb,
    process_age_s,
    process_cpu_s,
)
from fercam.defaults import DEFAULT_DETECTOR
from fercam.live import LiveRunner, set_up_for_live_threads
from fercam.settings import Settings, SettingsStore

BENCH_BACKEND = "fercam-bench"


@dataclass(frozen=True)
class BenchConfig:
    source: str
    size: tuple[int, int] = (1280, 720)
    faces: int = 1
    detector: str = DEFAULT_DETECTOR
    seconds: float = 10.0
    fps: int = 30
    compare: bool = False
    microphone: str | None = None  # a recording whose sound is heard as the microphone (listening.py)


def default_source() -> tuple[str, str]:
    """What to measure when no `--source` is given: the first webcam that opens, otherwise the clip shipped
    with FER Cam; and a line saying which."""
    from fercam.devices import probe_webcams
    from fercam.paths import SAMPLE_CLIP

    cameras = probe_webcams()
    if cameras:
        index, size = next(iter(cameras.items()))
        return str(index), f"no --source: measuring webcam {index} ({size})"
    return str(SAMPLE_CLIP), f"no --source and no webcam: measuring the sample clip {SAMPLE_CLIP}"


def _runner(config: BenchConfig, timers: dict) -> LiveRunner:
    """The live pipeline as the app builds it, with timed stages, into the counting backend."""
    import pyvirtualcam

    from fercam.pipeline import ReaderConfig, make_live_reader
    from fercam.sinks import VirtualCameraSink

    pyvirtualcam.register_backend(BENCH_BACKEND, CountingBackend)
    set_up_for_live_threads()
    width, height = config.size
    source = TiledSource(config.source, config.size, config.faces, config.fps)
    sink = VirtualCameraSink(width=width, height=height, fps=config.fps, backend=BENCH_BACKEND)

    def timed_reader(config: ReaderConfig):
        reader = make_live_reader(config)
        reader.detector = timers["detector"] = TimedDetector(reader.detector)
        reader.classifier = timers["classifier"] = TimedReading(reader.classifier)
        return reader

    settings = Settings(detector=config.detector, width=width, height=height, fps=config.fps)
    store = SettingsStore(initial=settings.replace(voice=config.microphone is not None))
    return LiveRunner(source, sink, store, timed_reader)


def _run(runner: LiveRunner, seconds: float) -> float:
    """Run for `seconds`; returns when it ended, and always puts the counting backend away."""
    import pyvirtualcam

    threading.Timer(seconds, runner.stop).start()
    try:
        runner.run()
    finally:
        runner.source.close()
        runner.sink.close()
        pyvirtualcam.camera.BACKENDS.pop(BENCH_BACKEND, None)  # never offer the counter as a real camera
    return time.monotonic()


def run_bench(config: BenchConfig) -> dict:
    """Run the live pipeline for `config.seconds` and return the measured figures."""
    origin = time.monotonic() - process_age_s()
    timers: dict = {}
    runner = _runner(config, timers)
    hearing = listening.hear(runner, config.microphone) if config.microphone else None
    cpu_start = process_cpu_s()
    try:
        end = _run(runner, config.seconds)
    finally:
        if hearing is not None:
            hearing.stop()
    timers["cpu_s"] = process_cpu_s() - cpu_start
    result = _figures(runner, timers, origin, end, config)
    if hearing is not None:
        result.update(listening.figures(hearing, config.seconds, config.microphone))
    if config.compare:
        result.update(compare_reference(config, result))
    return result


def _figures(runner: LiveRunner, timers: dict, origin: float, end: float, config: BenchConfig) -> dict:
    stats = runner.stats
    latencies = np.array(stats.latencies_ms) if stats.latencies_ms else np.zeros(1)
    steady = end - (stats.first_annotated_at or end)
    detector, classifier = timers.get("detector"), timers.get("classifier")
    per_s = (lambda n: round(n / steady, 2)) if steady > 0 else (lambda n: 0.0)
    return {
        "source": config.source,
        "size": f"{config.size[0]}x{config.size[1]}",
        "faces": config.faces,
        "detector": config.detector,
        "seconds": config.seconds,
        "output_fps": round(stats.frames_sent / max(1e-9, end - (stats.first_frame_at or end)), 2),
        "latency_p50_ms": round(float(np.percentile(latencies, 50)), 2),
        "latency_p95_ms": round(float(np.percentile(latencies, 95)), 2),
        # Boxes follow the faces at the analysis rate; emotions are re-read per face at the refresh rate.
        "analysis_hz": per_s(stats.analyses),
        "emotion_refresh_hz_per_face": per_s(classifier.faces / config.faces) if classifier else 0.0,
        "full_scans_per_s": per_s(len(detector.full_ms)) if detector else 0.0,
        "tracked_searches_per_s": per_s(len(detector.near_ms)) if detector else 0.0,
        "detector_full_scan_ms": mean(detector.full_ms if detector else []),
        "detector_tracked_ms": mean(detector.near_ms if detector else []),
        "classifier_ms_per_face": mean(classifier.ms_per_face if classifier else []),
        # how often the zoo model actually ran per face (the combined reading's refresh rule)
        "second_opinion_hz_per_face": per_s(getattr(classifier.inner, "second_reads", 0) / config.faces)
        if classifier
        else 0.0,
        "second_opinion_reasons": getattr(classifier.inner, "refresh_reasons", {}) if classifier else {},
        "first_frame_s": round(stats.first_frame_at - origin, 3) if stats.first_frame_at else None,
        "first_annotated_s": round(stats.first_annotated_at - origin, 3) if stats.first_annotated_at else None,
        "rss_mb": peak_rss_mb(),
        # CPU seconds per wall second for the whole process (clip decoding included), and per stage.
        "cpu_cores": round(timers["cpu_s"] / config.seconds, 3),
        "cpu_cores_by_stage": {k: round(v / config.seconds, 3) for k, v in sorted(stats.cpu_s.items())},
        "frames_received": CountingBackend.frames,
    }


def compare_reference(config: BenchConfig, result: dict, frames: int = 8) -> dict:
    """Time the `mtcnn` package's detect_faces on the same frames (needs fercam[train])."""
    from fercam.detection import load_detector

    source = TiledSource(config.source, config.size, config.faces, config.fps, realtime=False)
    images = [source.read().image for _ in range(frames + 1)]
    source.close()
    reference = load_detector("mtcnn-reference")
    reference.detect(images[0])  # warm-up: graph building is not detection time
    start = time.perf_counter()
    for image in images[1:]:
        reference.detect(image)
    reference_ms = (time.perf_counter() - start) * 1000 / frames
    return {"reference_detector_ms": round(reference_ms, 2), "reference_hz": round(1000 / reference_ms, 2)}


def run_soak(config: BenchConfig, *, sample_s: float = 10.0) -> dict:
    """The live pipeline for `config.seconds`, sampling memory and output rate: does anything creep?"""
    runner = _runner(config, {})
    samples: list[tuple[float, float, int]] = []  # (seconds, RSS MB, frames sent)
    started = time.monotonic()

    def sample() -> None:
        while not runner.stopped:
            samples.append((time.monotonic() - started, current_rss_mb(), runner.stats.frames_sent))
            runner._stop.wait(sample_s)

    threading.Thread(target=sample, daemon=True).start()
    _run(runner, config.seconds)
    t, rss, sent = (np.array(column, float) for column in zip(*samples))
    warm = min(3, len(t) - 2)  # the first 30 s load models and fill caches
    rate = np.diff(sent) / np.diff(t)
    return {
        "source": config.source,
        "seconds": config.seconds,
        "size": f"{config.size[0]}x{config.size[1]}",
        "frames_sent": runner.stats.frames_sent,
        "rss_mb_after_warmup": round(rss[warm], 1),
        "rss_mb_end": round(rss[-1], 1),
        "rss_growth_pct": round(100 * (rss[-1] - rss[warm]) / rss[warm], 2),
        "fps_start": round(float(rate[warm]), 2),
        "fps_end": round(float(rate[-1]), 2),
    }


def run_matrix(source: str, seconds: float) -> list[dict]:
    """Each scenario in a fresh `fercam bench --json` process, so start-up and memory are its own."""
    results = []
    for scenario in SCENARIOS:
        command = [sys.executable, "-m", "fercam", "bench", "--json", "--source", source, "--seconds", str(seconds)]
        command += ["--size", scenario["size"], "--faces", str(scenario["faces"])]
        done = subprocess.run(command, capture_output=True, text=True, check=True, env=dict(os.environ))
        result = json.loads(done.stdout)
        goals = {**scenario["goals"], **START_GOALS}
        result["goals_met"] = {key: met(result[key], goal) for key, goal in goals.items()}
        results.append(result)
    return results


def format_report(result: dict) -> str:
    """The result in words, each figure against its goal (the raw figures: --json)."""
    from fercam.apps.bench.perfpage import machine

    lines = [
        f"fercam bench: {result['size']}, {result['faces']} face(s), detector {result['detector']}, "
        f"{result['seconds']:g} s of {result['source']}",
        f"  on {machine()}",
    ]
    goals = goals_for(result)
    for key, (text, good, bad) in WORDS.items():
        value, goal = result.get(key), goals.get(key)
        if value is None:
            continue
        verdict = "" if goal is None else f": {good if met(value, goal) else bad} (goal {goal[0]} {goal[1]:g})"
        lines.append(f"  {text.format(value)}{verdict}")
    lines.append(
        f"  per face: emotion models {result['classifier_ms_per_face']} ms a reading, second opinion "
        f"{result['second_opinion_hz_per_face']} times a second; detector {result['detector_full_scan_ms']} ms a "
        f"full scan ({result['full_scans_per_s']}/s), {result['detector_tracked_ms']} ms a tracked search "
        f"({result['tracked_searches_per_s']}/s)"
    )
    stages = ", ".join(f"{k} {v}" for k, v in result["cpu_cores_by_stage"].items())
    lines.append(f"  cores by stage: {stages}")
    if "microphone" in result:
        lines.append(listening.report_line(result))
    return "\n".join(lines)


def print_model_bench(voice: str | None, model: str | None, *, as_json: bool) -> int:
    """`fercam bench --voice` / `--model`: a model alone, at batch size 1."""
    if voice is not None:
        from fercam.voice.speed import bench_voice, format_voice_report

        result = bench_voice(voice or None)
        print(json.dumps(result) if as_json else format_voice_report(result))
    else:
        result = bench_model(model or None)
        print(json.dumps(result) if as_json else format_model_report(result))
    return 0


def print_matrix(source: str, seconds: float, soak: dict | None, *, report: str | None, as_json: bool) -> int:
    """`fercam bench --matrix`: every scenario against its goals; exit code 1 if any goal is missed."""
    from fercam.apps.bench.perfpage import performance_page

    matrix = run_matrix(source, seconds)
    if report:
        soaked = f" --soak {soak['seconds']:g}" if soak else ""
        command = f"fercam bench --matrix{soaked} --seconds {seconds:g} --source SOURCE --report {report}"
        previous = Path(report).read_text(encoding="utf-8") if Path(report).is_file() else ""
        Path(report).write_text(performance_page(matrix, bench_model(), soak, command, previous), encoding="utf-8")
    lines = []
    for r in matrix:
        missed = [k for k, ok in r["goals_met"].items() if not ok]
        verdict = "all goals met" if not missed else "missed: " + ", ".join(missed)
        lines.append(
            f"{r['size']} {r['faces']} face(s): cpu_cores {r['cpu_cores']}, output {r['output_fps']} fps, {verdict}"
        )
    print(json.dumps({"matrix": matrix, "soak": soak}) if as_json else "\n".join(lines))
    return 0 if all(all(r["goals_met"].values()) for r in matrix) else 1
