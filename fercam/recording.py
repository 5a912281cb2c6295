"""Recordings that survive: an H.264 MP4 written in fragments that each carry their own index.

A recording stopped by a signal is finished by the caller's `close()`; one killed outright, or cut
short by a full disk, still plays up to its last fragment.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from fercam.errors import os_reason as _reason

log = logging.getLogger(__name__)
MEDIA_TIME_BASE = Fraction(1, 90000)  # MPEG's clock: frames timed by the source keep their times to 11 us


def letterbox(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Resize to exactly width x height, letterboxed so faces keep their proportions."""
    h, w = image.shape[:2]
    if (w, h) == (width, height):
        return image
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    canvas = np.zeros((height, width, 3), np.uint8)
    x, y = (width - new_w) // 2, (height - new_h) // 2
    canvas[y : y + new_h, x : x + new_w] = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    return canvas


class SinkError(RuntimeError):
    """A sink that cannot be opened; the message names the fix."""


class VideoFileSink:
    """An H.264 MP4 written in fragments, each with its own index, so a killed process leaves a playable file.

    Opened on the first frame so its size follows the source; later frames of another size (a
    "camera disconnected" frame, say) are letterboxed into it rather than dropped. Frames follow one another at
    `fps`, or, given `media_time` (called at each frame: its time in the source, in seconds), keep the source's
    own timing, so a variable-rate phone video stays in step with its sound.
    """

    closed = False

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float = 30.0,
        size: tuple[int, int] | None = None,
        media_time: Callable[[], float] | None = None,
    ) -> None:
        self.path, self.size = Path(path), size  # size: every frame letterboxed to it; None: the first frame's
        self.media_time, self._first_time, self._last_pts = media_time, 0.0, -1
        if not self.path.parent.is_dir():
            raise SinkError(f"folder does not exist: {self.path.parent}")
        if not 0 < fps <= 240:
            raise SinkError(f"cannot record at {fps} fps: use 1 to 240")
        self.fps = fps
        self.frames = 0
        self._container = self._stream = None

    def _open(self, width: int, height: int) -> None:
        import av

        try:
            self._container = av.open(
                str(self.path),
                "w",
                format="mp4",
                # Fragments, each with its own index, flushed to the file as they close: a killed process
                # loses at most the half second being encoded.
                options={"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
            )
        except (OSError, av.FFmpegError) as exc:
            raise SinkError(f"cannot write video file {self.path}: {_reason(exc)}") from exc
        rate = Fraction(self.fps).limit_denominator(1001)
        self._stream = self._container.add_stream("libx264", rate=rate)
        # yuv420p needs even sides (and at least 2)
        self._stream.width, self._stream.height = max(2, width - width % 2), max(2, height - height % 2)
        self._stream.pix_fmt = "yuv420p"
        if self.media_time is not None:
            self._stream.codec_context.time_base = MEDIA_TIME_BASE
        # A keyframe (so a fragment) every second; zerolatency writes each frame out as it comes.
        self._stream.options = {
            "preset": "veryfast",
            "tune": "zerolatency",
            "crf": "23",
            "g": str(max(1, round(self.fps))),
        }

    def send(self, image: np.ndarray) -> None:
        import av

        if self._container is None:
            self._open(*(self.size or (image.shape[1], image.shape[0])))
            self._first_time = self.media_time() if self.media_time else 0.0
        frame = av.VideoFrame.from_ndarray(letterbox(image, self._stream.width, self._stream.height), format="bgr24")
        if self.media_time is None:
            frame.pts = self.frames
        else:  # from the first frame's time, as the constant-rate file starts at 0; never two frames at one time
            seconds = self.media_time() - self._first_time
            frame.pts = max(self._last_pts + 1, round(seconds / MEDIA_TIME_BASE))
            frame.time_base = MEDIA_TIME_BASE
        self._last_pts = frame.pts
        self._write(self._stream.encode(frame))
        self.frames += 1

    def _write(self, packets) -> None:
        import av

        try:
            for packet in packets:
                self._container.mux(packet)
        except (OSError, av.FFmpegError) as exc:  # a full disk, a file-size limit, a removed drive
            raise SinkError(f"cannot write video file {self.path}: {_reason(exc)}") from exc

    def close(self) -> None:
        if self._container is None:
            return
        container, self._container = self._container, None
        try:
            for packet in self._stream.encode(None):
                container.mux(packet)
        except Exception as exc:  # the frames already written stay readable: the index went with them
            log.warning("could not finish %s cleanly: %s", self.path, _reason(exc))
        finally:
            try:
                container.close()
            except Exception as exc:
                log.warning("could not close %s: %s", self.path, _reason(exc))
