"""The stage contracts: what the pipeline needs of each stage, declared once.

Every real stage and every test fake satisfies one of these; the pipeline relies on them
instead of probing objects for optional methods.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from fercam.types import Box, Detection, Face, Frame

if TYPE_CHECKING:
    from fercam.body.cues import BodyCues
    from fercam.body.pose import Pose


class SourceError(ValueError):
    """A source that cannot be opened or read."""


class Closing:
    """`with` for a source or a sink (anything with `close()`): closed however the block ends."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


@runtime_checkable
class Source(Protocol):
    """Frames from a camera, a file, a stream or images."""

    name: str
    fps: float
    live: bool  # frames arrive in real time, so the newest wins
    reconnects: bool  # after read() gave None, reopen() may bring it back (cameras, streams)
    frame_count: int | None  # known for files and images; None for cameras and streams

    def read(self) -> Frame | None:
        """The next frame; None at the end, or while a live source has nothing."""

    def reopen(self) -> bool:
        """Try once to open the source again; False if it is still gone (or cannot come back)."""

    def close(self) -> None: ...


@runtime_checkable
class Sink(Protocol):
    """Where annotated frames go."""

    @property
    def closed(self) -> bool:
        """True once the user closed it (a window): the pipeline then stops."""

    def send(self, image: np.ndarray) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class Detector(Protocol):
    """Finds faces in a uint8 BGR image."""

    def detect(self, bgr_image: np.ndarray) -> list[Detection]:
        """Every face in the image, best first."""

    def detect_near(self, bgr_image: np.ndarray, boxes: Sequence[Box]) -> list[Detection]:
        """The faces near `boxes` (the tracked ones); cheaper than `detect` where the detector allows."""


@runtime_checkable
class EmotionClassifier(Protocol):
    """Seven emotion probabilities (FER2013 order) for each uint8 gray face crop."""

    def predict_faces(self, faces: np.ndarray | list[np.ndarray]) -> np.ndarray:
        """(N, 7) probabilities for N crops of any size."""


@runtime_checkable
class FaceClassifier(Protocol):
    """Seven emotion probabilities for the detected faces of a BGR image: a reading that needs the colour
    picture and the landmarks, not only grey crops (`fercam.combined.CombinedReading`)."""

    unsure_below: float  # a face whose top probability is under this is "unsure"

    def classify(
        self, bgr_image: np.ndarray, detections: Sequence[Detection], timestamp: float | None = None
    ) -> np.ndarray:
        """(N, 7) probabilities, one row per detection; with the frame's time in seconds the reading may
        reuse what it read of the same face recently (`fercam.refresh.RefreshRule`)."""

    def forget(self) -> None:
        """Reuse nothing read so far: the next picture is unrelated."""


@runtime_checkable
class VoiceClassifier(Protocol):
    """Seven emotion probabilities for each 2 s window of 16 kHz mono speech."""

    def predict_windows(self, windows: Sequence[np.ndarray]) -> np.ndarray:
        """(N, 7) probabilities for N windows."""


@runtime_checkable
class PoseEstimator(Protocol):
    """Every person's body points in a uint8 BGR image."""

    def estimate(self, bgr_image: np.ndarray) -> list[Pose]: ...


@runtime_checkable
class CueReader(Protocol):
    """Body-language cues per tracked face id; called on every analysis, it runs its pose at its own rate."""

    def read(self, frame: Frame, faces: Sequence[Face]) -> dict[int, BodyCues]: ...
