"""Live audio in: a microphone (sounddevice / PortAudio) feeding a bounded buffer of the newest samples."""

from __future__ import annotations

import logging
import threading

import numpy as np

from fercam.errors import os_reason
from fercam.voice.audio import DEFAULT_RATE, to_float

log = logging.getLogger(__name__)


class MicrophoneError(RuntimeError):
    """Live input is unavailable: sounddevice or PortAudio missing, or no usable microphone."""


class RecentAudio:
    """The newest `seconds` of a mono stream, in memory only; written by one thread, read by another. A ring: a
    push copies only its own samples (a sound card's pieces come 50-100 times a second)."""

    def __init__(self, seconds: float, sample_rate: int = DEFAULT_RATE) -> None:
        self.sample_rate = sample_rate
        self._buffer = np.zeros(round(seconds * sample_rate), np.float32)
        self._end = 0  # samples pushed since the start (or `clear`): the newest is at (_end - 1) % size
        self._fresh = 0  # of them, pushed since the last read
        self._lock = threading.Lock()

    def push(self, samples: np.ndarray) -> None:
        size = len(self._buffer)
        chunk = to_float(samples)[-size:]
        with self._lock:
            at = self._end % size
            head = min(len(chunk), size - at)
            self._buffer[at : at + head] = chunk[:head]
            self._buffer[: len(chunk) - head] = chunk[head:]
            self._end += len(chunk)
            self._fresh = min(self._fresh + len(chunk), size)

    def read(self) -> np.ndarray:
        """A copy of what has been heard, up to `seconds` long."""
        return self.read_fresh()[0]

    def read_fresh(self) -> tuple[np.ndarray, np.ndarray]:
        """(what has been heard, the part of it pushed since the last read), both copies."""
        with self._lock:
            heard, fresh, self._fresh = self._newest(min(self._end, len(self._buffer))), self._fresh, 0
        return heard, heard[len(heard) - fresh :]

    def read_new(self) -> np.ndarray:
        """A copy of what was pushed since the last read only (the listener's tenth of a second, not its 2 s)."""
        with self._lock:
            new, self._fresh = self._newest(self._fresh), 0
        return new

    def _newest(self, count: int) -> np.ndarray:
        size, at = len(self._buffer), self._end % len(self._buffer)
        if count <= at:
            return self._buffer[at - count : at].copy()
        return np.concatenate([self._buffer[size - (count - at) :], self._buffer[:at]])

    def clear(self) -> None:
        with self._lock:
            self._buffer[:], self._end, self._fresh = 0.0, 0, 0


def _import_sounddevice():
    try:
        import sounddevice
    except ImportError as exc:
        raise MicrophoneError("live voice input needs sounddevice: pip install sounddevice") from exc
    except OSError as exc:  # the package is there but its PortAudio library is not
        raise MicrophoneError(
            f"sounddevice cannot load PortAudio ({exc}); on Linux: apt install libportaudio2"
        ) from exc
    return sounddevice


class Microphone:
    """An input device (default: the system's) feeding `audio`, at its native rate: no driver resampling."""

    def __init__(self, seconds: float, *, device: int | str | None = None) -> None:
        self.device, self._seconds, self._stream = device, seconds, None
        self.audio = RecentAudio(seconds)

    def start(self) -> Microphone:
        sd = _import_sounddevice()
        try:
            rate = int(sd.query_devices(self.device, "input")["default_samplerate"])
            self.audio = RecentAudio(self._seconds, rate)
            self._stream = sd.InputStream(
                samplerate=rate, channels=1, dtype="float32", device=self.device, callback=self._on_audio
            )
            self._stream.start()
        except (sd.PortAudioError, ValueError) as exc:
            raise MicrophoneError(f"cannot open the microphone: {os_reason(exc)}") from exc
        log.info("listening on %s at %d Hz", "the default microphone" if self.device is None else self.device, rate)
        return self

    def stop(self) -> None:
        if self._stream is not None:
            self._stream.stop()
            self._stream.close()
            self._stream = None

    def _on_audio(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        if status:
            log.debug("microphone: %s", status)
        self.audio.push(indata[:, 0])
