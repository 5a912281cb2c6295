"""Who is speaking, live: the microphone's voice goes to the face whose mouth moves with it (docs/speaking.md).

`LiveHearing` is what switching the voice on starts beside a `LiveRunner`: the microphone listener (the voice's
emotion) and `LiveSpeaking` (whose voice it is), sharing one voice-activity detector, so each sample of sound is
judged by Silero once. `LiveSpeaking` runs on a thread of its own: the inference thread offers it each analysis
(`offer`, which only copies references), and it measures the faces' mouths (Face Mesh) at most `max_hz` times a
second (`MouthPace`), and only while speech was heard in the last `awake_s`: silence costs nothing. The video thread
reads the newest `Speaking` (`now`). Everything is bounded (the last few seconds of mouths and sound); nothing is
stored.
"""

from __future__ import annotations

import logging
import threading
import time

import numpy as np

from fercam.live.clocks import CameraClock
from fercam.live.slots import LatestSlot
from fercam.speaking.attribution import SpeakerAttributor, Speaking
from fercam.speaking.lips import MouthMeter, SteadyCrops
from fercam.speaking.voice_activity import VoiceActivity
from fercam.types import Analysis, Frame
from fercam.worker import Worker

log = logging.getLogger(__name__)

RESYNC_S = 0.25  # the sound's clock is set again when it strays this far from the wall clock (a dropout)


class HeardVoice:
    """The listener's voice-activity detector on `time.monotonic()`'s clock, shared by the listener's thread
    (`feed`, `heard_speech`, `clear`) and the speaking thread (under `lock`)."""

    def __init__(self, keep_s: float = 6.0) -> None:
        self.activity = VoiceActivity(keep_s=keep_s)
        self.lock = threading.Lock()
        self._started = False

    def feed(self, samples: np.ndarray, sample_rate: int) -> None:
        """Samples that have just been heard: they end now (within the sound card's own step)."""
        now = time.monotonic()
        if not len(samples):
            return
        with self.lock:
            if not self._started:
                self.activity.start, self._started = now - len(samples) / sample_rate, True
            self.activity.feed(samples, sample_rate)
            ahead = self.activity.end - now
            if ahead > 0 or ahead < -RESYNC_S:  # sound never ends after now; far behind, samples were lost
                self.activity.start -= ahead

    def heard_speech(self) -> bool:
        with self.lock:
            return self.activity.heard_speech()

    def heard_within(self, seconds: float) -> bool:
        return time.monotonic() - self.activity.last_speech <= seconds

    def clear(self) -> None:
        with self.lock:
            self.activity.clear()
            self._started = False


class MouthPace:
    """`take(t)`: are the mouths of a frame at `t` (seconds, in order) to be measured? Not within 0.8 / `max_hz` of the
    last one taken: every other analysis at 22-30 Hz, each one when analyses are slower. (Fewer hurt: replayed at 11
    and 10 a second, the still galleries of tools/measure_speaking.py lost 3 of 35 turns; docs/speaking.md.)"""

    def __init__(self, max_hz: float) -> None:
        self.gap = 0.8 / max_hz
        self._last = float("-inf")

    def take(self, t: float) -> bool:
        if t - self._last < self.gap:
            return False
        self._last = t
        return True


class LiveSpeaking:
    """`offer(analysis, frame)` from the inference thread, `saw(frame)` and `now() -> Speaking | None` from the
    video thread; `voice` is the voice-activity detector to give the microphone listener."""

    def __init__(
        self, *, make_meter=MouthMeter, max_hz: float = 15.0, awake_s: float = 5.0, fresh_s: float = 1.0
    ) -> None:
        self.voice = HeardVoice()
        self.make_meter, self._meter = make_meter, None  # Face Mesh loads on this thread, the first time it is needed
        self.max_hz = max_hz
        self.awake_s, self.fresh_s = awake_s, fresh_s
        self.cpu_s, self.measured = 0.0, 0  # for `fercam bench`
        self._offered = LatestSlot()  # (time, image, {face id: box})
        self._said = LatestSlot()  # the newest Speaking
        self._start_afresh()
        self._worker = Worker("fercam-speaking", self._run, join_s=2)

    def start(self) -> LiveSpeaking:
        self._worker.start()
        return self

    def stop(self) -> None:
        self._worker.stop()

    def offer(self, analysis: Analysis, frame: Frame) -> None:
        """The newest analysis and its frame; taken only while someone was heard lately and the last is not too
        recent. Cheap: the measuring happens on this object's thread."""
        t = self._clock.at(frame.timestamp)
        if not analysis.faces or not self.voice.heard_within(self.awake_s) or not self._pace.take(t):
            return
        self._offered.put((t, frame.image, {face.id: face.box for face in analysis.faces}))

    def saw(self, frame: Frame, captured: float) -> None:
        """A frame the video thread shows, read at `captured` (`time.monotonic()`): what ties the camera's clock to
        the sound's."""
        self._clock.saw(frame.timestamp, captured)

    def forget(self) -> None:
        """Another camera: its tracker's faces are other people, whatever ids they get."""
        self._start_afresh()
        self._said.put(None)

    def _start_afresh(self) -> None:
        self.attributor = SpeakerAttributor(self.voice.activity)
        self._clock, self._crops = CameraClock(), SteadyCrops()  # crops held as in `fercam analyze`: boxes waver
        self._pace = MouthPace(self.max_hz)

    def now(self) -> Speaking | None:
        """Who speaks, if it was judged within the last `fresh_s` (else None: nobody was heard lately)."""
        said = self._said.get()
        return said if said is not None and time.monotonic() - said.t <= self.fresh_s else None

    def _run(self) -> None:
        seen = 0
        while not self._worker.stopping.is_set():
            version, offered = self._offered.wait_newer(seen, 0.2)
            if version == seen:
                continue
            seen, cpu = version, time.thread_time()
            try:
                self._judge(*offered)
            except Exception as exc:  # who speaks is an extra: its failure costs only the mark
                log.error("who is speaking failed: %s", f"{type(exc).__name__}: {exc}".splitlines()[0])
                log.debug("who is speaking failed", exc_info=exc)
                self._worker.stopping.wait(1.0)
            self.cpu_s += time.thread_time() - cpu

    def _judge(self, t: float, image: np.ndarray, boxes: dict) -> None:
        if self._meter is None:
            self._meter = self.make_meter()
        mouths = self._meter.measure(image, self._crops.hold(boxes))
        with self.voice.lock:
            said = self.attributor.update(t, mouths)
        self.measured += 1
        self._said.put(said)


class LiveHearing:
    """The voice for a live runner: the microphone listener's emotion and who speaks, one sound stream, one voice
    activity detector. `microphone`: a recording's sound instead of the input device (`ClipMicrophone`)."""

    def __init__(self, microphone=None, *, classifier=None) -> None:
        from fercam.voice.listener import MicrophoneListener

        self.speaking = LiveSpeaking()
        self.listener = MicrophoneListener(classifier, microphone=microphone, speech=self.speaking.voice)
        self._runner = None  # the runner attached last

    def start(self) -> LiveHearing:
        """Open the microphone (`MicrophoneError` when there is none) and start listening and watching mouths."""
        self.listener.start()
        self.speaking.start()
        return self

    def stop(self) -> None:
        self.speaking.stop()
        self.listener.stop()

    def attach(self, runner) -> None:
        """Have `runner` draw the voice and offer its analyses to who-is-speaking (a new runner's faces are new)."""
        if runner is not self._runner:
            self.speaking.forget()
            self._runner = runner
        runner.voice_probs, runner.speaking = self.listener.latest, self.speaking
