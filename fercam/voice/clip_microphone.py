"""A recording's sound as the microphone, heard in real time: for demos, tests and `fercam bench --microphone`.

`ClipMicrophone` stands where `fercam.voice.microphone.Microphone` stands (`start()`, `stop()`, `audio`): the
sound is decoded once (16 kHz mono: 3.8 MB a minute of it) and each 20 ms piece is pushed once it has "been said",
so whatever listens to it waits for it exactly as for a real microphone.
"""

from __future__ import annotations

import time
from pathlib import Path

from fercam.voice.audio import DEFAULT_RATE, AudioError, AudioFile, load_audio
from fercam.voice.features import WINDOW_S
from fercam.voice.microphone import MicrophoneError, RecentAudio
from fercam.worker import Worker

PIECE_S = 0.02  # what a sound card hands over at a time


def check_clip(path: str | Path) -> None:
    """MicrophoneError, in one line, unless `path` is a readable recording with sound."""
    try:
        AudioFile(path).close()
    except AudioError as exc:
        raise MicrophoneError(f"--microphone {exc}") from None


class ClipMicrophone:
    """`path`'s sound, at 16 kHz, pushed into `audio` as time passes; silence after its end, or its start again
    with `loop`."""

    def __init__(self, path: str | Path, seconds: float = WINDOW_S, *, loop: bool = False) -> None:
        try:
            self._sound = load_audio(path, DEFAULT_RATE)  # decoded once: a loop must not decode it again
        except AudioError as exc:
            raise MicrophoneError(f"--microphone {exc}") from None
        self.path, self.loop = Path(path), loop
        self.audio = RecentAudio(seconds, DEFAULT_RATE)
        self._worker = Worker("fercam-clip-microphone", self._play)

    def start(self) -> ClipMicrophone:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def _play(self) -> None:
        sound = self._sound
        piece, started, played = round(PIECE_S * DEFAULT_RATE), time.monotonic(), 0  # samples pushed since `started`
        while not self._worker.stopping.is_set():
            for at in range(0, len(sound), piece):
                chunk = sound[at : at + piece]
                played += len(chunk)
                if self._worker.stopping.wait(max(0.0, started + played / DEFAULT_RATE - time.monotonic())):
                    return
                self.audio.push(chunk)
            if not self.loop:
                return
