"""Live voice emotion from the microphone: the newest 2 s, re-classified every half second, kept in memory only.

`MicrophoneListener` is what the app's voice reading runs (`fercam.apps.app`); the model itself is
`fercam.voice.classifier.VoiceClassifier`, the microphone `fercam.voice.microphone.Microphone`.
"""

from __future__ import annotations

import logging
import time

import numpy as np

from fercam.voice.audio import resample
from fercam.voice.calibration import NO_SPEECH, UNSURE
from fercam.voice.classifier import VoiceClassifier, load_voice_classifier
from fercam.voice.features import SAMPLE_RATE, WINDOW_S, RunningStats, voice_features
from fercam.voice.microphone import Microphone, RecentAudio
from fercam.voice.speech import SpeechStream
from fercam.worker import Worker

log = logging.getLogger(__name__)


class MicrophoneListener:
    """Live voice emotion: keeps only the newest 2 s in memory and re-classifies it every `hop_s`.

    Nothing is written to disk. `latest()` is None while nobody speaks. `push()` feeds samples
    from any other source the same way the microphone does. Features are standardised with running
    statistics of the speech heard since `start()` (forgetting over about `memory` windows, i.e.
    `memory * hop_s` seconds), shrunk towards the training speakers' average while little is heard.
    """

    def __init__(
        self,
        classifier: VoiceClassifier | None = None,
        *,
        device: int | str | None = None,
        microphone=None,
        speech=None,
        hop_s: float = 0.5,
        listen_s: float = 0.1,
        memory: float = 240.0,
    ) -> None:
        """`microphone`: what to hear instead of the input `device` (`start()`, `stop()`, `audio`: a recording's
        sound, `fercam.voice.clip_microphone.ClipMicrophone`); `speech`: the voice-activity detector, fed every
        `listen_s` (`feed(samples, rate)`, `heard_speech()`, `clear()`), which who-is-speaking shares."""
        self._classifier, self._device, self._hop_s, self._listen_s = classifier, device, hop_s, listen_s
        self.voice = RunningStats(memory)
        self._audio, self._speech = RecentAudio(WINDOW_S, SAMPLE_RATE), speech or SpeechStream(WINDOW_S)
        self._given = microphone
        self._microphone = None
        self._latest: np.ndarray | None = None
        self._worker = Worker("fercam-voice", self._run)

    def start(self) -> MicrophoneListener:
        """Open the microphone (`fercam.voice.microphone.MicrophoneError` if there is none) and start classifying."""
        self._model()
        self._microphone = (self._given or Microphone(WINDOW_S, device=self._device)).start()
        self._audio = self._microphone.audio
        self._worker.start()
        return self

    def stop(self) -> None:
        """Stop classifying and close the microphone; the buffered audio is dropped."""
        self._worker.stop()
        if self._microphone is not None:
            self._microphone.stop()
            self._microphone = None
        for state in (self._audio, self._speech, self.voice):
            state.clear()
        self._latest = None

    def latest(self) -> np.ndarray | str | None:
        """The newest (7,) probabilities when the model is sure, else "unsure" or "no speech"; None before any sound."""
        return self._latest

    def push(self, samples: np.ndarray) -> None:
        """Append mono samples at the listener's rate (16 kHz unless `start()` opened a device)."""
        self._audio.push(samples)

    def listen(self) -> None:
        """Hand what was heard since the last call to the voice-activity detector (the thread: every `listen_s`)."""
        self._speech.feed(self._audio.read_new(), self._audio.sample_rate)

    def update(self) -> np.ndarray | str | None:
        """Classify the buffered audio now (the background thread calls this every `hop_s`)."""
        (window, fresh), rate = self._audio.read_fresh(), self._audio.sample_rate
        self._speech.feed(fresh, rate)
        if len(window) < rate // 2:
            self._latest = None
        elif not self._speech.heard_speech():
            self._latest = NO_SPEECH
        else:
            model = self._model()
            features = voice_features([resample(window, rate, SAMPLE_RATE)])
            self.voice.add(features)
            moments, count = self.voice.moments()
            probs = model.predict_features(features, stats=model.norm.stats(moments, count))[0]
            self._latest = probs if model.sure(probs) else UNSURE
        return self._latest

    def _model(self) -> VoiceClassifier:
        if self._classifier is None:
            self._classifier = load_voice_classifier()
        return self._classifier

    def _run(self) -> None:
        due = time.monotonic() + self._hop_s
        while not self._worker.stopping.wait(min(self._listen_s, self._hop_s)):
            try:
                if time.monotonic() < due:
                    self.listen()
                    continue
                due += self._hop_s
                self.update()
            except Exception:  # keep listening: one bad window must not end live input
                log.exception("voice classification failed")

    def __enter__(self) -> MicrophoneListener:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()
