"""Emotion from the voice: functional speech features in numpy, speaker normalisation, a LiteRT MLP.

Every 2-second window of 16 kHz speech becomes 299 numbers (statistics of MFCCs, pitch, loudness,
spectral shape and the mel spectrum over the window's speech frames). Before the model sees them,
they are standardised with the statistics of the whole recording (or the speaker's voice heard so
far), shrunk towards the training speakers' average: that removes much of what makes one voice
differ from another (pitch range, timbre, microphone) and keeps what changes with emotion. A
longer clip is the mean of its windows. No TensorFlow import: the app runs the `.tflite` model
with LiteRT, a few ms per window. `VoiceTimeline` reads a recording window by window; live
microphone input is `fercam.voice.listener`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.litert import LiteRTModel, ModelError
from fercam.paths import model_file
from fercam.types import EMOTIONS
from fercam.voice.audio import resample, to_float
from fercam.voice.calibration import NO_SPEECH, UNSURE, temperature_scale
from fercam.voice.features import (
    N_FEATURES,
    NORMS,
    SAMPLE_RATE,
    WINDOW_S,
    FeatureNorm,
    clip_windows,
    norm_file,
    voice_features,
)
from fercam.voice.speech import VAD_CHUNK, SpeechDetector, enough_speech

DEFAULT_MODEL = "voice_mlp.tflite"


class VoiceClassifier:
    """Seven-way emotion probabilities (`EMOTIONS` order) for speech, from a LiteRT model.

    `norm` says whose statistics standardise the features: "recording" (default) treats all the
    windows or clips of one call as one speaker's recording; "clip" standardises each clip (each
    window for `predict_windows`) on its own; "population" uses only the training speakers' average.
    """

    labels = EMOTIONS

    def __init__(self, path: str | Path, *, num_threads: int = 1) -> None:
        self.path = Path(path)
        self._model = LiteRTModel(
            self.path,
            input_shape=(N_FEATURES + 1,),
            outputs=len(EMOTIONS),
            num_threads=num_threads,
            what=f"{N_FEATURES} voice features + context",
        )
        stats = norm_file(self.path)
        try:
            saved = json.loads(stats.read_text())
            self.norm = FeatureNorm.from_json(saved)
            # calibration on held-out speakers (older models have none: no scaling, never "unsure")
            self.temperature = float(saved.get("temperature", 1.0))
            self.unsure_below = float(saved.get("unsure_below", 0.0))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ModelError(
                f"{self.path}: its feature statistics {stats.name} are missing or unreadable ({exc})"
            ) from exc

    def predict_features(self, features: np.ndarray, *, norm: str = "recording", stats=None) -> np.ndarray:
        """(N, 299) raw features from `voice_features` -> (N, 7) calibrated probabilities.

        `stats` (`(mean, std, context)` from `self.norm.stats`) overrides `norm`.
        """
        features = np.asarray(features, np.float32).reshape(-1, N_FEATURES)
        if stats is None:
            if norm not in NORMS:
                raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
            if norm == "population":
                stats = self.norm.prior()
            elif norm == "clip":
                return self._run(np.concatenate([self.norm.apply(f[None]) for f in features]))
        return self._run(self.norm.apply(features, stats))

    def _run(self, inputs: np.ndarray) -> np.ndarray:
        return temperature_scale(self._model.run(inputs), self.temperature) if len(inputs) else self._model.run(inputs)

    def sure(self, probs: np.ndarray) -> np.ndarray:
        """Per row: is the top probability at least the calibrated threshold (else the app says "unsure")?"""
        return np.asarray(probs).max(axis=-1) >= self.unsure_below

    def predict_windows(self, windows: Sequence[np.ndarray], *, norm: str = "recording") -> np.ndarray:
        """16 kHz segments (each fitted to 2 s) -> (N, 7) probabilities."""
        return self.predict_features(voice_features(windows), norm=norm)

    def predict_clips(self, clips: Sequence[np.ndarray], sample_rate: int, *, norm: str = "recording") -> np.ndarray:
        """Mono int16/float clips at `sample_rate` -> (N, 7): each the mean over its 2 s windows.

        With the default `norm="recording"` the clips of one call are standardised together, as one
        speaker's: pass one speaker's clips in one call. `norm="clip"` treats each clip alone.
        """
        if norm not in NORMS:
            raise ValueError(f"norm must be one of {', '.join(NORMS)}, not {norm!r}")
        per_clip = [clip_windows(resample(clip, sample_rate, SAMPLE_RATE)) for clip in clips]
        if not per_clip:
            return np.zeros((0, len(EMOTIONS)), np.float32)
        counts = np.array([len(w) for w in per_clip])
        features = voice_features([w for windows in per_clip for w in windows])
        starts = np.cumsum(counts) - counts
        if norm == "clip":
            probs = np.concatenate(
                [self.predict_features(features[a : a + n]) for a, n in zip(starts, counts, strict=True)]
            )
        else:
            probs = self.predict_features(features, norm=norm)
        return np.add.reduceat(probs, starts, axis=0) / counts[:, None]


def load_voice_classifier(path: str | Path | None = None) -> VoiceClassifier:
    """Load the shipped voice model, or the `.tflite` file at `path` (its `.json` statistics beside it)."""
    path = Path(path) if path is not None else model_file(DEFAULT_MODEL)
    if not path.is_file():
        raise ModelError(f"voice model file not found: {path}")
    return VoiceClassifier(path)


@dataclass(frozen=True)
class VoiceWindow:
    """A window's span (s), whether anyone speaks, its probabilities if so, and whether they are sure enough."""

    start: float
    end: float
    speech: bool
    probs: np.ndarray | None
    sure: bool = True

    @property
    def emotion(self) -> str | None:
        """The emotion heard, or None for no speech or an unsure window."""
        return EMOTIONS[int(np.argmax(self.probs))] if self.probs is not None and self.sure else None

    @property
    def label(self) -> str:
        """What the app says: an emotion, "unsure" or "no speech"."""
        return self.emotion or (UNSURE if self.speech else NO_SPEECH)

    @property
    def confidence(self) -> float | None:
        return None if self.probs is None else float(np.max(self.probs))


class VoiceTimeline:
    """Emotion every `hop_s` over a recording fed in blocks (`feed`), in memory bounded by one window however
    long it is: speech is found as the audio comes, each speech window is kept as its 299 features, and
    the model runs once in `windows()`, so the whole recording's speech standardises the features
    (`norm="recording"`: speaker normalisation for a one-speaker recording; see `VoiceClassifier`).
    The model always sees 2 s: a different `window_s` is centre-cropped or zero-padded to 2 s.
    `offset` (s) is added to every time: where the sound starts in its container.
    """

    def __init__(
        self,
        classifier: VoiceClassifier,
        window_s: float = WINDOW_S,
        hop_s: float = 0.5,
        *,
        norm: str = "recording",
        offset: float = 0.0,
    ) -> None:
        if window_s <= 0 or hop_s <= 0:
            raise ValueError(f"window_s and hop_s must be positive, got {window_s}, {hop_s}")
        self.classifier, self.norm, self.offset = classifier, norm, offset
        self._size, self._hop = round(window_s * SAMPLE_RATE), round(hop_s * SAMPLE_RATE)
        self._buffer, self._base, self._total = np.zeros(0, np.float32), 0, 0  # _base: the buffer's first sample
        self._detector, self._flags = SpeechDetector(), np.zeros(0, bool)
        self._spans: list[tuple[int, int, bool]] = []
        self._features: list[np.ndarray] = []

    @property
    def seconds(self) -> float:
        """How much sound has been fed."""
        return self._total / SAMPLE_RATE

    def feed(self, samples: np.ndarray) -> None:
        """More of the recording, 16 kHz mono."""
        samples = to_float(samples)
        self._buffer, self._total = np.concatenate([self._buffer, samples]), self._total + len(samples)
        self._flags = np.concatenate([self._flags, self._detector.feed(samples)])
        self._add_windows(final=False)

    def _add_windows(self, *, final: bool) -> None:
        """The windows the sound fed so far completes (`final`: up to its end), then drop what none needs."""
        start = len(self._spans) * self._hop
        while start + self._size <= self._total and (
            final or round((start + self._size) / VAD_CHUNK) <= len(self._flags)  # its speech flags are in
        ):
            self._add(start)
            start += self._hop
        if final and self._total and (not self._spans or self._spans[-1][0] + self._size < self._total):
            self._add(max(0, self._total - self._size))  # the last window ends at the end
        keep = min(start, self._total - self._size)
        if keep > self._base:
            self._buffer, self._base = self._buffer[keep - self._base :], keep

    def _add(self, start: int) -> None:
        end = min(start + self._size, self._total)
        speech = enough_speech(self._flags[round(start / VAD_CHUNK) : round(end / VAD_CHUNK)])
        if speech:
            self._features.append(voice_features([self._buffer[start - self._base : end - self._base]])[0])
        self._spans.append((start, end, speech))

    def windows(self) -> list[VoiceWindow]:
        """Every window of the sound fed so far (the last one ends at its end; one shorter window if under
        2 s), classified. Call it once the feeding is over."""
        self._add_windows(final=True)
        features = np.array(self._features, np.float32).reshape(-1, N_FEATURES)
        probs = self.classifier.predict_features(features, norm=self.norm)
        found = iter(zip(probs, self.classifier.sure(probs)))
        seconds = [(self.offset + a / SAMPLE_RATE, self.offset + b / SAMPLE_RATE, s) for a, b, s in self._spans]
        return [VoiceWindow(a, b, True, *next(found)) if s else VoiceWindow(a, b, False, None) for a, b, s in seconds]


def voice_timeline(
    samples: np.ndarray,
    sample_rate: int,
    classifier: VoiceClassifier,
    window_s: float = WINDOW_S,
    hop_s: float = 0.5,
    *,
    norm: str = "recording",
) -> list[VoiceWindow]:
    """Emotion every `hop_s` over a whole recording in memory (see `VoiceTimeline`, which streams);
    windows without speech get `speech=False, probs=None`."""
    timeline = VoiceTimeline(classifier, window_s, hop_s, norm=norm)
    timeline.feed(resample(samples, sample_rate, SAMPLE_RATE))
    return timeline.windows()


def write_voice_csv(
    windows: list[VoiceWindow], path: str | Path, *, columns: Sequence[str] = (), cells: Sequence[Sequence] = ()
) -> Path:
    """One row per window: start_s, end_s, speech, emotion ("no speech" / "unsure" / the emotion), confidence,
    then the 7 probabilities (also for unsure windows); then the caller's `columns`, with each window's `cells`
    (`fercam analyze`: the face that spoke it)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start_s", "end_s", "speech", "emotion", "confidence", *EMOTIONS, *columns])
        for w, extra in zip(windows, cells or [()] * len(windows), strict=True):
            probs = [f"{p:.4f}" for p in w.probs] if w.probs is not None else [""] * len(EMOTIONS)
            confidence = f"{w.confidence:.4f}" if w.probs is not None else ""
            writer.writerow([f"{w.start:.3f}", f"{w.end:.3f}", int(w.speech), w.label, confidence, *probs, *extra])
    return path
