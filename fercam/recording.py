"""Recordings that survive: an H.264 MP4 written in fragments that each carry their own index.

A recording stopped by a signal is finished by the caller's `close()`; one killed outright, or cut
short by a full disk, still plays up to its last fragment.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from fercam.contracts import Closing
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


class VideoFileSink(Closing):
    """An H.264 MP4 written in fragments, each with its own index, so a killed process leaves a playable file.

    Opened on the first frame so its size follows the source; later frames of another size (a
    "camera disconnected" frame, say) are letterboxed into it rather than dropped. Frames follow one another at
    `fps`, or, given `media_time` (called at each frame: its time in the source, in seconds), keep the source's
    own timing, so a variable-rate phone video stays in step with its sound. Given both `media_time` and
    `on_grid` (a live recording, timed by its frames' capture times), each frame goes in the slot of 1/fps nearest
    its time: the file lasts as long as the session (a pause is a longer frame, not re-encoded copies, which
    would cost a busy machine more), a 24 fps camera plays at its own speed, and a frame more than a slot behind
    (a camera faster than the file) is left out. Tools read the file's rate from its first frames: in its first
    second, the slots a late camera left empty repeat the picture before, so they read `fps`.
    """

    closed = False

    def __init__(
        self,
        path: str | Path,
        *,
        fps: float = 30.0,
        size: tuple[int, int] | None = None,
        media_time: Callable[[], float] | None = None,
        on_grid: bool = False,
    ) -> None:
        self.path, self.size = Path(path), size  # size: every frame letterboxed to it; None: the first frame's
        self.media_time, self._first_time, self._last_pts = media_time, 0.0, -1
        self.on_grid = media_time is not None and on_grid  # slots of 1/fps, at the frames' times
        self._last_frame = None  # the frame before, for the first second's empty slots
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
            _create_private(self.path)
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
        if self.media_time is not None and not self.on_grid:
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
        if self.on_grid:
            self._send_on_grid(letterbox(image, self._stream.width, self._stream.height))
            return
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

    def _send_on_grid(self, image: np.ndarray) -> None:
        import av

        slot = round((self.media_time() - self._first_time) * self.fps)
        if slot < self._last_pts:
            return  # more than a slot behind: the camera is faster than the file
        for empty in range(self._last_pts + 1, min(slot, round(self.fps))):  # the first second: kept dense
            self._encode(self._last_frame, empty)
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        self._encode(frame, max(slot, self._last_pts + 1))  # the frame before lasts until this one

    def _encode(self, frame, pts: int) -> None:
        frame.pts = self._last_pts = pts
        self._write(self._stream.encode(frame))
        self._last_frame = frame
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


def _create_private(path: Path) -> None:
    """The recording's file, empty, readable by the user only (a stricter umask stays stricter): FFmpeg then
    writes into it, as it would have created it 0644."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, stat.S_IMODE(os.fstat(fd).st_mode) & 0o600)  # a file already there keeps no wider mode
    finally:
        os.close(fd)
