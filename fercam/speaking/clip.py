"""Who speaks in a whole recording, frame by frame: the offline paths.

`SpeakingStream.read(t, image, boxes)` is `fercam analyze`'s: it is given the frames and faces the analysis found,
reads the sound alongside, and measures the mouths only near speech. `SpeakingReader.read(path)` (tests,
measurements) decodes the picture, finds and tracks the faces and hands each frame to a `SpeakingStream`, so it
measures mouths exactly as `fercam analyze` does. Faces are searched for in the whole frame every `scan_every`
frames and near where they were every `near_every` frames (MTCNN's cheap `detect_near`), and kept where they were
in between, as the live cadence does for faces that do not move.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.contracts import Detector
from fercam.media import VideoReader
from fercam.speaking.attribution import SpeakerAttributor, Speaking
from fercam.speaking.lips import MouthMeter, SteadyCrops
from fercam.speaking.voice_activity import VoiceActivity
from fercam.tracking import FaceTracker
from fercam.types import EMOTIONS, Box
from fercam.voice.audio import AudioFile
from fercam.voice.speech import VAD_CHUNK_S

# The attribution reads each mouth over about the last 1.8 s (its 1.5-s window plus the high-pass's and the lags'
# margins) and finds a speaker only within its 0.4-s hangover after speech; so a mouth is needed from
# MOUTH_BEFORE_S before any speech to MOUTH_AFTER_S after it, and measuring it only then changes no reading.
MOUTH_BEFORE_S, MOUTH_AFTER_S = 2.0, 0.5
AHEAD_S = 3.0  # how far the sound is decoded ahead of the picture: past MOUTH_BEFORE_S, to see speech coming


@dataclass(frozen=True)
class SpeakingFrame:
    """One frame's faces (id -> box), their mouth openings and who speaks."""

    t: float
    boxes: dict[int, Box]
    mouths: dict[int, float]
    speaking: Speaking


class SpeakingReader:
    """`read(path) -> SpeakingFrame per video frame` for a recording with sound (`MediaError` for one without a
    picture, `AudioError` for one without sound); `options` go to the `SpeakerAttributor`."""

    def __init__(
        self,
        detector: Detector | None = None,
        meter: MouthMeter | None = None,
        *,
        scan_every: int = 25,
        near_every: int = 1,
        **options,
    ) -> None:
        from fercam.detection import load_detector

        self.detector = detector or load_detector()
        self.meter = meter or MouthMeter()
        self.scan_every, self.near_every, self.options = scan_every, near_every, options

    def read(self, path: str | Path) -> Iterator[SpeakingFrame]:
        video = VideoReader(path)
        try:
            stream = SpeakingStream(path, self.meter, **self.options)  # AudioError, with the reason, without sound
        except Exception:
            video.close()
            raise
        tracker = FaceTracker()
        try:
            for index, (image, t) in enumerate(video.frames()):
                t = index / video.fps if t is None else t
                near = tracker.boxes
                if index % self.scan_every == 0 or not near or not hasattr(self.detector, "detect_near"):
                    found = self.detector.detect(image)
                elif index % self.near_every == 0:
                    found = self.detector.detect_near(image, near)
                else:
                    found = tracker.detections()
                unknown = np.full((len(found), len(EMOTIONS)), np.nan)  # no emotion here: identities only
                boxes = {face.id: face.box for face in tracker.update(found, unknown, t)}
                yield SpeakingFrame(t, boxes, *stream.read(t, image, boxes))
        finally:
            video.close()
            stream.close()


class SpeakingStream:
    """`judge(t, image, {face id: box}) -> {face id: speaking 0..1}` over a recording's frames in time order (`read`
    also gives the mouths measured and the whole `Speaking`): its sound is read alongside in 0.5-s blocks up to
    `AHEAD_S` ahead, so memory holds a few seconds whatever the length; the mouths are measured (the mesh, a few ms
    a face) only near speech, elsewhere every face is 0 at no cost; each face's crop is held still while its box
    wavers (`SteadyCrops`). `AudioError` for a recording without sound."""

    def __init__(self, path: str | Path, meter: MouthMeter | None = None, **options) -> None:
        self._audio = AudioFile(path)
        self._blocks = self._audio.blocks(block_s=0.5)
        self.attributor = SpeakerAttributor(VoiceActivity(start=self._audio.offset), **options)
        self.meter = meter or MouthMeter()
        self.measured = 0  # frames whose mouths were measured
        self._crops = SteadyCrops()

    def judge(self, t: float, image: np.ndarray, boxes: dict[int, Box]) -> dict[int, float]:
        return dict(self.read(t, image, boxes)[1].faces)

    def read(self, t: float, image: np.ndarray, boxes: dict[int, Box]) -> tuple[dict[int, float], Speaking]:
        """The mouths measured at `t` (none away from speech) and who speaks."""
        voice = self.attributor.voice
        while voice.end < t + AHEAD_S and (block := next(self._blocks, None)) is not None:
            voice.feed(block, self._audio.sample_rate)
        near = voice.speech(np.arange(t - MOUTH_AFTER_S, t + MOUTH_BEFORE_S, VAD_CHUNK_S / 2)).max() > 0
        if not boxes or not near:
            return {}, Speaking(t, dict.fromkeys(boxes, 0.0))
        self.measured += 1
        mouths = self.meter.measure(image, self._crops.hold(boxes))
        return mouths, self.attributor.update(t, mouths)

    def close(self) -> None:
        self._audio.close()
