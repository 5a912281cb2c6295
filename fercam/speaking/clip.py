"""Who speaks in a whole recording, frame by frame: the offline path (tests, measurements, `fercam analyze` later).

`SpeakingReader.read(path)` decodes the picture and the sound together (the sound fed up to each frame's time,
so memory holds a few seconds whatever the length), finds and tracks the faces, measures each mouth and asks a
`SpeakerAttributor` who speaks. Faces are searched for in the whole frame every `scan_every` frames and near
where they were every `near_every` frames (MTCNN's cheap `detect_near`), and kept where they were in between, as
the live cadence does for faces that do not move.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.contracts import Detector
from fercam.media import VideoReader
from fercam.speaking.attribution import SpeakerAttributor, Speaking
from fercam.speaking.lips import MouthMeter
from fercam.speaking.voice_activity import VoiceActivity
from fercam.tracking import FaceTracker
from fercam.types import EMOTIONS, Box
from fercam.voice.audio import AudioFile


@dataclass(frozen=True)
class SpeakingFrame:
    """One frame's faces (id -> box), their mouth openings and who speaks."""

    t: float
    boxes: dict[int, Box]
    mouths: dict[int, float]
    speaking: Speaking


class SpeakingReader:
    """`read(path) -> SpeakingFrame per video frame` for a recording with sound (`MediaError` for one without a
    picture, `AudioError` for one without sound)."""

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
        self.scan_every, self.near_every, self.options = scan_every, near_every, options  # options: the attributor's

    def read(self, path: str | Path) -> Iterator[SpeakingFrame]:
        video = VideoReader(path)
        try:
            audio = AudioFile(path)  # AudioError, with the reason, for a recording without sound
        except Exception:
            video.close()
            raise
        attributor = SpeakerAttributor(VoiceActivity(start=audio.offset), **self.options)
        blocks, tracker = audio.blocks(block_s=0.5), FaceTracker()
        try:
            for index, (image, t) in enumerate(video.frames()):
                t = index / video.fps if t is None else t
                while attributor.voice.end < t + 1.0 and (block := next(blocks, None)) is not None:
                    attributor.voice.feed(block, audio.sample_rate)  # the sound a little ahead of the picture
                near = tracker.boxes
                if index % self.scan_every == 0 or not near or not hasattr(self.detector, "detect_near"):
                    found = self.detector.detect(image)
                elif index % self.near_every == 0:
                    found = self.detector.detect_near(image, near)
                else:
                    found = tracker.detections()
                unknown = np.full((len(found), len(EMOTIONS)), np.nan)  # no emotion here: identities only
                faces = tracker.update(found, unknown, t)
                boxes = {face.id: face.box for face in faces}
                mouths = self.meter.measure(image, boxes)
                yield SpeakingFrame(t, boxes, mouths, attributor.update(t, mouths))
        finally:
            video.close()
            audio.close()
