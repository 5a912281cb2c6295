"""Emotion from the voice: log-mel features in numpy, a LiteRT CNN, timelines and live microphone.

The model sees 2-second windows of 16 kHz speech; a longer clip is the mean of its windows.
No TensorFlow import: the app runs the `.tflite` model with LiteRT, a few ms per window.
"""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from fercam.audio import DEFAULT_RATE, Microphone, RecentAudio, is_speech, resample, sliding_windows, to_float
from fercam.emotion import ModelError
from fercam.paths import model_file
from fercam.types import EMOTIONS

log = logging.getLogger(__name__)

DEFAULT_MODEL = "voice_cnn.tflite"
SAMPLE_RATE = DEFAULT_RATE
WINDOW_S = 2.0
N_FFT = 512  # 32 ms
HOP = 256  # 16 ms
N_MELS = 64
WINDOW_SAMPLES = round(WINDOW_S * SAMPLE_RATE)
N_FRAMES = 1 + (WINDOW_SAMPLES - N_FFT) // HOP  # 124 frames in a 2 s window
FLOOR_DB = -80.0  # relative to the window's loud frames: quieter is treated as silence
_CHUNK = 32  # windows per FFT batch: larger batches spill the cache and run 3x slower


def _hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + np.asarray(hz) / 700.0)


@lru_cache(maxsize=1)
def mel_filterbank(fmin: float = 50.0, fmax: float = SAMPLE_RATE / 2) -> np.ndarray:
    """(N_FFT // 2 + 1, N_MELS) triangular HTK-mel filters."""
    mel_points = np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), N_MELS + 2)
    hz_points = 700.0 * (10 ** (mel_points / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(N_FFT, 1 / SAMPLE_RATE)
    lower, center, upper = hz_points[:-2, None], hz_points[1:-1, None], hz_points[2:, None]
    rising = (bins[None] - lower) / (center - lower)
    falling = (upper - bins[None]) / (upper - center)
    return np.maximum(0.0, np.minimum(rising, falling)).T.astype(np.float32)


@lru_cache(maxsize=1)
def _sparse_filterbank() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(bins, weights, band starts) of the non-zero filter taps, for `np.add.reduceat`.

    A dense matmul is 30x slower here when OpenBLAS threads fight a busy CPU; ~500 taps need no BLAS.
    """
    bank = mel_filterbank()
    bands = [np.flatnonzero(bank[:, k]) for k in range(N_MELS)]
    bins = np.concatenate(bands)
    weights = np.concatenate([bank[b, k] for k, b in enumerate(bands)])
    starts = np.cumsum([0] + [len(b) for b in bands[:-1]])
    return bins, weights.astype(np.float32), starts


def _mel_power(spectrum: np.ndarray) -> np.ndarray:
    bins, weights, starts = _sparse_filterbank()
    return np.add.reduceat(spectrum[..., bins] * weights, starts, axis=-1)


@lru_cache(maxsize=1)
def _hann() -> np.ndarray:
    return np.hanning(N_FFT + 1)[:-1].astype(np.float32)


def fit_window(samples: np.ndarray, offset: int | None = None) -> np.ndarray:
    """Exactly one 2 s window: a longer clip is cut at `offset` (default centre), a shorter one zero-padded."""
    samples = to_float(samples)
    extra = len(samples) - WINDOW_SAMPLES
    if extra >= 0:
        start = extra // 2 if offset is None else int(np.clip(offset, 0, extra))
        return samples[start : start + WINDOW_SAMPLES]
    before = -extra // 2 if offset is None else int(np.clip(offset, 0, -extra))
    return np.pad(samples, (before, -extra - before))


def log_mel(windows: np.ndarray) -> np.ndarray:
    """(N, 32000) 16 kHz windows -> (N, 124, 64, 1) float32 loudness-normalised log-mel features.

    Each window is scaled so its loud frames (95th percentile energy) sit at 0 dB: gain is
    irrelevant, which evens out SAVEE's clipped and 20 dB quieter speakers and any microphone.
    """
    windows = np.asarray(windows, np.float32).reshape(-1, WINDOW_SAMPLES)
    if len(windows) <= _CHUNK:
        return _log_mel(windows)
    return np.concatenate([_log_mel(windows[i : i + _CHUNK]) for i in range(0, len(windows), _CHUNK)])


def _log_mel(windows: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(windows, N_FFT, axis=1)[:, ::HOP] * _hann()
    spectrum = np.fft.rfft(frames, axis=-1)
    mel = _mel_power((spectrum.real**2 + spectrum.imag**2).astype(np.float32))
    reference = np.percentile(mel.sum(axis=-1), 95, axis=-1)[:, None, None] + 1e-10
    db = 10.0 * np.log10(mel / reference + 1e-10)
    return ((np.maximum(db, FLOOR_DB) + 40.0) / 20.0)[..., None].astype(np.float32)


def clip_windows(samples: np.ndarray, hop_s: float = 1.0) -> list[np.ndarray]:
    """The 2 s pieces (views) that cover a 16 kHz clip, overlapping by `WINDOW_S - hop_s`."""
    return [seg for _, _, seg in sliding_windows(samples, SAMPLE_RATE, WINDOW_S, hop_s)]


def window_probs(predict: Callable[[np.ndarray], np.ndarray], windows: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 7) for 16 kHz segments, each fitted to 2 s; `_CHUNK` at a time so an hour of audio stays small."""
    chunks = range(0, len(windows), _CHUNK)
    probs = [predict(log_mel(np.stack([fit_window(w) for w in windows[i : i + _CHUNK]]))) for i in chunks]
    return np.concatenate(probs) if probs else np.zeros((0, len(EMOTIONS)), np.float32)


def clip_probs(predict: Callable[[np.ndarray], np.ndarray], clips: Sequence[np.ndarray]) -> np.ndarray:
    """(N, 7) for 16 kHz clips: `predict` (features -> probabilities) averaged over each clip's windows."""
    per_clip = [clip_windows(clip) for clip in clips]
    if not per_clip:
        return np.zeros((0, len(EMOTIONS)), np.float32)
    counts = np.array([len(w) for w in per_clip])
    probs = window_probs(predict, [w for windows in per_clip for w in windows])
    return np.add.reduceat(probs, np.cumsum(counts) - counts, axis=0) / counts[:, None]


class VoiceClassifier:
    """Seven-way emotion probabilities (`EMOTIONS` order) for speech, from a LiteRT model."""

    labels = EMOTIONS

    def __init__(self, path: str | Path, *, num_threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.path = Path(path)
        try:
            self._interpreter = Interpreter(model_path=str(self.path), num_threads=num_threads)
            self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{self.path}: not a LiteRT model ({exc})") from exc
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]
        if tuple(self._input["shape"][1:]) != (N_FRAMES, N_MELS, 1) or self._output["shape"][-1] != len(EMOTIONS):
            raise ModelError(f"{self.path}: expects {self._input['shape']}, not log-mel {N_FRAMES}x{N_MELS}x1 -> 7")
        self._batch = int(self._input["shape"][0])
        self._lock = threading.Lock()  # a LiteRT interpreter is not thread-safe

    def predict_features(self, features: np.ndarray) -> np.ndarray:
        """(N, 124, 64, 1) features from `log_mel` -> (N, 7) probabilities, run in batches of 32."""
        if len(features) <= _CHUNK:
            return self._invoke(features)
        return np.concatenate([self._invoke(features[i : i + _CHUNK]) for i in range(0, len(features), _CHUNK)])

    def _invoke(self, features: np.ndarray) -> np.ndarray:
        if len(features) == 0:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        with self._lock:
            if len(features) != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], features.shape)
                self._interpreter.allocate_tensors()
                self._batch = len(features)
            self._interpreter.set_tensor(self._input["index"], np.ascontiguousarray(features, np.float32))
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output["index"]).copy()

    def predict_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """16 kHz segments (each fitted to 2 s) -> (N, 7) probabilities."""
        return window_probs(self.predict_features, windows)

    def predict_clips(self, clips: Sequence[np.ndarray], sample_rate: int) -> np.ndarray:
        """Mono int16/float clips at `sample_rate` -> (N, 7): each the mean over its 2 s windows."""
        return clip_probs(self.predict_features, [resample(clip, sample_rate, SAMPLE_RATE) for clip in clips])


def load_voice_classifier(path: str | Path | None = None) -> VoiceClassifier:
    """Load the shipped voice model, or the `.tflite` file at `path`."""
    path = Path(path) if path is not None else model_file(DEFAULT_MODEL)
    if not path.is_file():
        raise ModelError(f"voice model file not found: {path}")
    return VoiceClassifier(path)


@dataclass(frozen=True)
class VoiceWindow:
    """One window of a recording: its span (s), whether anyone speaks, and the emotion if so."""

    start: float
    end: float
    speech: bool
    probs: np.ndarray | None

    @property
    def emotion(self) -> str | None:
        return None if self.probs is None else EMOTIONS[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))


def voice_timeline(
    samples: np.ndarray,
    sample_rate: int,
    classifier: VoiceClassifier,
    window_s: float = WINDOW_S,
    hop_s: float = 0.5,
) -> list[VoiceWindow]:
    """Emotion every `hop_s` over a whole recording; silent windows get `speech=False, probs=None`.

    The model always sees 2 s: a different `window_s` is centre-cropped or zero-padded to 2 s.
    """
    samples = resample(samples, sample_rate, SAMPLE_RATE)
    windows = sliding_windows(samples, SAMPLE_RATE, window_s, hop_s)
    speech = [is_speech(seg, SAMPLE_RATE) for _, _, seg in windows]
    probs = iter(classifier.predict_windows([w[2] for w, s in zip(windows, speech, strict=True) if s]))
    return [VoiceWindow(a, b, s, next(probs) if s else None) for (a, b, _), s in zip(windows, speech, strict=True)]


def write_voice_csv(windows: list[VoiceWindow], path: str | Path) -> Path:
    """One row per window: start_s, end_s, speech, emotion, confidence, then the 7 probabilities."""
    path = Path(path)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start_s", "end_s", "speech", "emotion", "confidence", *EMOTIONS])
        for w in windows:
            probs = [f"{p:.4f}" for p in w.probs] if w.probs is not None else [""] * len(EMOTIONS)
            confidence = f"{w.confidence:.4f}" if w.probs is not None else ""
            writer.writerow([f"{w.start:.3f}", f"{w.end:.3f}", int(w.speech), w.emotion or "", confidence, *probs])
    return path


class MicrophoneListener:
    """Live voice emotion: keeps only the newest 2 s in memory and re-classifies it every `hop_s`.

    Nothing is written to disk. `latest()` is None while nobody speaks. `push()` feeds samples
    from any other source the same way the microphone does.
    """

    def __init__(
        self, classifier: VoiceClassifier | None = None, *, device: int | str | None = None, hop_s: float = 0.5
    ) -> None:
        self._classifier, self._device, self._hop_s = classifier, device, hop_s
        self._audio = RecentAudio(WINDOW_S, SAMPLE_RATE)
        self._microphone: Microphone | None = None
        self._latest: np.ndarray | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> MicrophoneListener:
        """Open the microphone (`fercam.audio.MicrophoneError` if there is none) and start classifying."""
        self._model()
        self._microphone = Microphone(WINDOW_S, device=self._device).start()
        self._audio = self._microphone.audio
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="fercam-voice", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop classifying and close the microphone; the buffered audio is dropped."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._microphone is not None:
            self._microphone.stop()
            self._microphone = None
        self._audio.clear()
        self._latest = None

    def latest(self) -> np.ndarray | None:
        """The newest (7,) probabilities, or None when the last 2 s held no speech."""
        return self._latest

    def push(self, samples: np.ndarray) -> None:
        """Append mono samples at the listener's rate (16 kHz unless `start()` opened a device)."""
        self._audio.push(samples)

    def update(self) -> np.ndarray | None:
        """Classify the buffered audio now (the background thread calls this every `hop_s`)."""
        window, rate = self._audio.read(), self._audio.sample_rate
        speaking = len(window) >= rate // 2 and is_speech(window, rate)
        self._latest = self._model().predict_windows([resample(window, rate, SAMPLE_RATE)])[0] if speaking else None
        return self._latest

    def _model(self) -> VoiceClassifier:
        if self._classifier is None:
            self._classifier = load_voice_classifier()
        return self._classifier

    def _run(self) -> None:
        while not self._stopping.wait(self._hop_s):
            try:
                self.update()
            except Exception:  # keep listening: one bad window must not end live input
                log.exception("voice classification failed")

    def __enter__(self) -> MicrophoneListener:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
