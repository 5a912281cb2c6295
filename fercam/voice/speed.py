"""`fercam bench --voice`: milliseconds per 2 s window for the voice model's stages, on this machine's CPU."""

from __future__ import annotations

import platform
import time
from pathlib import Path

import numpy as np

GOAL_MS = 5.0  # features + model per 2 s window (issue 20)


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what `platform` knows."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _timed(call, repeats: int) -> list[float]:
    call()  # warm-up: first calls allocate and plan
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(1000 * (time.perf_counter() - start))
    return times


def speech_window(seconds: float = 2.0) -> np.ndarray:
    """A voice-like test signal (gliding harmonics at syllable rate, a little noise): the timing needs no data."""
    t = np.arange(int(seconds * 16000)) / 16000
    pitch = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / 16000
    voice = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
    noise = np.random.default_rng(0).standard_normal(len(t)) * 0.01
    return (0.2 * voice + noise).astype(np.float32)


def bench_voice(model: str | None = None, *, repeats: int = 200) -> dict:
    """Median and p90 ms per 2 s window: features, model, both (the live budget), the Silero VAD; and the VAD
    per 0.5 s hop as the live listener streams it."""
    from fercam.voice.classifier import load_voice_classifier
    from fercam.voice.features import voice_features
    from fercam.voice.speech import SpeechStream, speech_chunks

    classifier = load_voice_classifier(model)
    window = speech_window()
    features = voice_features([window])
    stages = {
        "features": lambda: voice_features([window]),
        "model": lambda: classifier.predict_features(features, norm="population"),
        "features_and_model": lambda: classifier.predict_windows([window], norm="population"),
        "vad": lambda: speech_chunks(window, 16000),
        "live_vad_per_hop": lambda: stream.feed(window[:8000], 16000),  # the listener's 0.5 s of new sound
    }
    stream = SpeechStream()
    result: dict = {"model": str(classifier.path), "cpu": cpu_name(), "cores": _cores(), "repeats": repeats}
    for name, call in stages.items():
        times = _timed(call, repeats if "vad" not in name else max(10, repeats // 10))
        result[f"{name}_ms"] = round(float(np.median(times)), 3)
        result[f"{name}_ms_p90"] = round(float(np.percentile(times, 90)), 3)
    result["meets_goal"] = result["features_and_model_ms"] <= GOAL_MS
    return result


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def format_voice_report(result: dict) -> str:
    lines = [f"fercam bench --voice: {result['model']}", f"  cpu  {result['cpu']}, {result['cores']} cores"]
    for stage in ("features", "model", "features_and_model", "vad", "live_vad_per_hop"):
        lines.append(f"  {stage:20s} median {result[stage + '_ms']:>8} ms   p90 {result[stage + '_ms_p90']:>8} ms")
    verdict = "ok" if result["meets_goal"] else "MISSED"
    lines.append(f"  features + model per 2 s window: goal <= {GOAL_MS} ms {verdict}")
    return "\n".join(lines)
