"""The sound side of who-is-speaking: speech-band loudness and Silero speech per 32 ms chunk, read back by time.

`VoiceActivity.feed(samples, sample_rate)` takes a stream's samples in order (a whole clip at once, a file's
blocks, or the microphone's pieces); `loudness(times)` and `speech(times)` read the chunks back at any times
(seconds on the stream's clock, which starts at `start`). Only the newest `keep_s` seconds are kept, so a live
stream holds a bounded history.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from fercam.voice.audio import DEFAULT_RATE, SILENCE_DB, resample, to_float
from fercam.voice.speech import VAD_CHUNK, VAD_CHUNK_S, SpeechDetector, enough_speech

SPEECH_BAND = (300.0, 3000.0)  # Hz: where opening the mouth changes the voice most (formants, not the voicing hum)
_WINDOW = np.hanning(VAD_CHUNK)
FREQUENCIES = np.fft.rfftfreq(VAD_CHUNK, 1 / DEFAULT_RATE)
_IN_BAND = (FREQUENCIES >= SPEECH_BAND[0]) & (FREQUENCIES <= SPEECH_BAND[1])


def power_spectrum(chunks: np.ndarray) -> np.ndarray:
    """(N, 512) chunks at 16 kHz -> (N, 257) Hann-windowed power at `FREQUENCIES`."""
    return np.abs(np.fft.rfft(chunks.astype(np.float64) * _WINDOW, axis=1)) ** 2


def band_db(chunks: np.ndarray) -> np.ndarray:
    """(N, 512) chunks at 16 kHz -> each one's mean square within `SPEECH_BAND`, in dBFS (a full-scale 1 kHz sine:
    -3 dB, as `frame_db` says of it). The lips followed it better than the whole band's loudness (docs/speaking.md)."""
    power = 2 * power_spectrum(chunks)[:, _IN_BAND].sum(axis=1) / (VAD_CHUNK * np.sum(_WINDOW**2))
    return 10 * np.log10(power + 1e-12)


class VoiceActivity:
    """Per 32 ms chunk: loudness in the speech band (dBFS, floored at `SILENCE_DB`) and speech (Silero and its
    loudness gate)."""

    def __init__(self, *, start: float = 0.0, keep_s: float = 10.0) -> None:
        self.start = start
        self._size = max(1, round(keep_s / VAD_CHUNK_S))
        self._db: deque[float] = deque(maxlen=self._size)
        self._speech: deque[bool] = deque(maxlen=self._size)
        self._detector = SpeechDetector()
        self._rest = np.zeros(0, np.float32)
        self._chunks = 0  # chunks fed since `start`, kept or not
        self.last_speech = float("-inf")  # where the newest chunk judged speech ends, on the stream's clock

    @property
    def end(self) -> float:
        """Where the fed sound ends (the end of its last whole chunk), on the stream's clock."""
        return self.start + self._chunks * VAD_CHUNK_S

    def feed(self, samples: np.ndarray, sample_rate: int = DEFAULT_RATE) -> None:
        """Append mono samples (int16 or float) that follow the ones fed before."""
        x = resample(to_float(samples), sample_rate, DEFAULT_RATE)
        flags = self._detector.feed(x)  # judges the same whole chunks as the loudness below
        x = np.concatenate([self._rest, x])
        count = len(x) // VAD_CHUNK
        self._rest = x[count * VAD_CHUNK :]
        self._db.extend(np.maximum(band_db(x[: count * VAD_CHUNK].reshape(count, VAD_CHUNK)), SILENCE_DB).tolist())
        self._speech.extend(flags.tolist())
        if flags.any():
            self.last_speech = self.start + (self._chunks + int(np.flatnonzero(flags)[-1]) + 1) * VAD_CHUNK_S
        self._chunks += count

    def heard_speech(self, seconds: float = 2.0) -> bool:
        """Did the newest `seconds` of sound hold at least 0.3 s of speech? (What the voice listener asks before
        it names an emotion: so one detector serves both.)"""
        count = round(seconds / VAD_CHUNK_S)
        return enough_speech(np.array(list(self._speech)[-count:], bool))

    def clear(self) -> None:
        """Forget everything heard; the clock goes on from where the fed sound ended."""
        self.start, self._chunks = self.end, 0
        self._db.clear()
        self._speech.clear()
        self._detector.clear()
        self._rest = np.zeros(0, np.float32)
        self.last_speech = float("-inf")

    def loudness(self, times: np.ndarray) -> np.ndarray:
        """dBFS at `times`, between chunk centres by interpolation; `SILENCE_DB` where no sound is kept."""
        return self._read(self._db, times, SILENCE_DB)

    def speech(self, times: np.ndarray) -> np.ndarray:
        """0..1 at `times`: 1 in chunks judged speech (interpolated between chunk centres); 0 where no sound is kept."""
        return self._read(self._speech, times, 0.0)

    def _read(self, values: deque, times: np.ndarray, outside: float) -> np.ndarray:
        times = np.asarray(times, np.float64)
        if not values:
            return np.full(times.shape, outside)
        first = self._chunks - len(values)  # the index of the oldest kept chunk
        centres = self.start + (np.arange(first, self._chunks) + 0.5) * VAD_CHUNK_S
        out = np.interp(times, centres, np.asarray(values, np.float64))
        out[(times < centres[0] - VAD_CHUNK_S / 2) | (times > centres[-1] + VAD_CHUNK_S / 2)] = outside
        return out
