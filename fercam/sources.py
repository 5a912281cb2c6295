"""Frame sources: webcam, video file, stream URL; and `open_source`, which opens any of them, or a
picture source (`fercam.pictures`: an image or a folder of images), from what a user types (checked by
`fercam.source_specs` first: its kind, and why a path cannot be read).

Every source satisfies `fercam.contracts.Source`: `read() -> Frame | None` (None: nothing now,
or the end), `close()`, `fps`, `live` (frames arrive in real time, so the newest wins) and
`reconnects` (an unplugged camera or a dropped stream may come back through `reopen()`).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fercam.contracts import Closing, Source, SourceError
from fercam.devices import probe_webcams
from fercam.media import MediaError, NoVideoError, VideoReader
from fercam.pictures import IMAGE_SUFFIXES, AnimatedPicture, ImageSource, StillCamera, is_animated
from fercam.registry import Registry
from fercam.source_specs import SOURCE_HELP, is_camera_index, is_stream_url, path_problem
from fercam.types import Frame

log = logging.getLogger(__name__)

NETWORK_TIMEOUT_S = 8.0  # FFmpeg's own is 30 s or none: an address that stops answering must not hold anyone long


class _CaptureSource(Closing):
    """Shared reading through cv2.VideoCapture."""

    live = False
    reconnects = False
    frame_count: int | None = None  # known for files and images, not for cameras and streams
    end_time = 0.0  # every source: the time at the end of the last frame read

    def __init__(self, capture: cv2.VideoCapture, name: str) -> None:
        self._capture = capture
        self.name = name
        self._index = 0
        self._start = time.monotonic()

    @property
    def fps(self) -> float:
        fps = self._capture.get(cv2.CAP_PROP_FPS)
        return fps if 1 <= fps <= 240 else 30.0

    def _grab(self) -> np.ndarray | None:
        ok, image = self._capture.read()
        return image if ok and image is not None else None

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self._capture.release()


class _LiveCapture(_CaptureSource):
    """A camera or a stream: frames carry the time since it opened, and a lost one can be opened again."""

    live = True
    reconnects = True

    def _open(self) -> cv2.VideoCapture:
        raise NotImplementedError

    def read(self) -> Frame | None:
        image = self._grab()
        if image is None:
            return None
        self._index += 1
        self.end_time = time.monotonic() - self._start
        return Frame(image, self._index - 1, self.end_time)

    def reopen(self) -> bool:
        """Try once to open it again after it was unplugged or dropped."""
        self._capture.release()
        self._capture = self._open()
        return self._capture.isOpened()


class WebcamSource(_LiveCapture):
    """A camera by index, with a one-frame buffer so the newest frame is always read."""

    def __init__(self, index: int, *, width: int = 1280, height: int = 720, fps: int = 30) -> None:
        self.index, self._request = index, (width, height, fps)
        super().__init__(self._open(), name=f"camera {index}")
        if not self._capture.isOpened():
            raise SourceError(f"no webcam at index {index}; sources are {SOURCE_HELP} (see `fercam devices`)")

    def _open(self) -> cv2.VideoCapture:
        backend = cv2.CAP_DSHOW if sys.platform == "win32" else cv2.CAP_ANY
        capture = cv2.VideoCapture(self.index, backend)
        width, height, fps = self._request
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        capture.set(cv2.CAP_PROP_FPS, fps)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture


class VideoFileSource(Closing):
    """A video file (or a file served over HTTP) decoded by PyAV (`fercam.media.VideoReader`): each frame
    carries its presentation time. Read as fast as possible or paced like a camera (`realtime`), optionally looped.
    """

    reconnects = False

    def __init__(
        self, path: str | Path, *, realtime: bool = False, loop: bool = False, size: tuple[int, int] | None = None
    ):
        url = is_stream_url(str(path))
        problem = "" if url else path_problem(str(path)) or (Path(path).is_dir() and f"{path} is a folder, not a video")
        if problem:
            raise SourceError(problem)
        try:
            self._reader = VideoReader(path, timeout_s=NETWORK_TIMEOUT_S if url else None)
        except NoVideoError:
            raise
        except MediaError as exc:
            raise SourceError(str(exc)) from None
        self.name, self.fps = str(path) if url else Path(path).name, self._reader.fps
        self.realtime, self.loop, self.size = realtime, loop, size
        self.live = realtime  # a paced file behaves like a camera for the live pipeline
        self.truncated = False  # the file ended before the frame count its header declares, or broke off
        self.problem = ""  # what was wrong with it, in words, once read to its end
        self.end_time = 0.0  # media time at the end of the last frame read; the stream's duration once read whole
        self._frames = self._reader.frames()
        self._index, self._offset, self._last_time, self._start = 0, 0.0, 0.0, time.monotonic()

    @property
    def frame_count(self) -> int | None:
        return self._reader.frame_count

    def read(self) -> Frame | None:
        item = next(self._frames, None)
        if item is None and self.loop and self._index > 0:
            self._reader.rewind()
            self._frames, self._offset = self._reader.frames(), self.end_time
            item = next(self._frames, None)
        if item is None:
            self._check_complete()
            return None
        image, media_time = item
        if self.size is not None and image.shape[1::-1] != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_LINEAR)
        # A raw stream (.h264) has no times: its declared rate stands in.
        timestamp = self._offset + (self._index / self.fps if media_time is None else max(0.0, media_time))
        timestamp = max(timestamp, self._last_time)  # a broken pts never sends time backwards
        step = timestamp - self._last_time if self._index and timestamp > self._last_time else 1 / self.fps
        self.end_time, self._last_time = timestamp + step, timestamp
        if self.realtime:
            timestamp = self._pace(timestamp)
        self._index += 1
        return Frame(image, self._index - 1, timestamp)

    def _pace(self, timestamp: float) -> float:
        """Wait until the frame is due, like a camera; after a stall, resume from now instead of catching up."""
        delay = self._start + timestamp - time.monotonic()
        if delay < -2 / self.fps:
            self._start -= delay  # fell behind (the machine stalled): no burst of missed frames
        time.sleep(max(0.0, delay))
        return time.monotonic() - self._start

    def _check_complete(self) -> None:
        """At the end: the file's own duration if it was read whole, else a warning (kept in `problem`) that
        says where it was damaged and how much was skipped or missing."""
        declared, failed, damage = self._reader.declared_frames, self._reader.failed, self._reader.damage()
        if self.truncated or not self._index:
            return
        if damage:
            self.problem = f"{self.name} is damaged: {damage}; read {self._index} frames"
            self.problem += f" of the {declared} its header declares" if declared else ""
        elif declared and self._index < declared - 1:
            self.problem = f"{self.name} is truncated: read {self._index} of the {declared} frames its header declares"
        elif failed:
            self.problem = f"{self.name} is damaged: read {self._index} frames, then: {failed}"
        elif self._reader.duration:
            self.end_time = self._offset + self._reader.duration  # the last frame's own length included
        if self.problem:
            self.truncated = True
            log.warning("%s", self.problem)

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self._reader.close()


class StreamSource(_LiveCapture):
    """An RTSP/HTTP stream; frames carry wall-clock time since the stream opened."""

    timeout_s = NETWORK_TIMEOUT_S

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(self._open(), name=url)
        if not self._capture.isOpened():
            raise SourceError(f"cannot open stream: {url}")

    @property
    def declared_frames(self) -> int:
        """Frames the stream declares: a file served over HTTP does, a live stream does not (0)."""
        return int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def _open(self) -> cv2.VideoCapture:
        timeout_ms = round(self.timeout_s * 1000)
        limits = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, timeout_ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, timeout_ms]
        capture = cv2.VideoCapture(self.url, cv2.CAP_FFMPEG, limits)
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        return capture


def _is_images(spec: str) -> bool:
    path = Path(spec)
    return path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES


MAX_CAMERA_INDEX = 9999  # beyond what any system numbers its cameras (and what OpenCV takes)


def _camera(spec: str, *, width: int = 1280, height: int = 720, fps: int = 30, **_options) -> WebcamSource:
    if int(spec) > MAX_CAMERA_INDEX:
        raise SourceError(f"no webcam at index {spec}; sources are {SOURCE_HELP} (see `fercam devices`)")
    return WebcamSource(int(spec), width=width, height=height, fps=fps)


def _stream(spec: str, *, realtime: bool = False, **_options) -> StreamSource | VideoFileSource:
    """A live stream, or a file served over HTTP (it declares its frames): read as a file, so it ends,
    in media time."""
    stream = StreamSource(spec)
    if stream.declared_frames <= 0:
        return stream
    stream.close()
    return VideoFileSource(spec, realtime=realtime)


def _images(
    spec: str, *, realtime: bool = False, width: int = 1280, height: int = 720, fps: int = 30, **_options
) -> ImageSource | AnimatedPicture | StillCamera:
    """Each picture once (each frame of an animated one, at its time); or, in real time (the camera of the
    tray, the window, a live output), a still camera."""
    if problem := path_problem(spec):
        raise SourceError(problem)
    if realtime:
        return StillCamera(spec, fps=fps, size=(width, height))
    return AnimatedPicture(spec) if Path(spec).is_file() and is_animated(spec) else ImageSource(spec)


def _video(spec: str, *, realtime: bool = False, **_options) -> VideoFileSource:
    if problem := path_problem(spec):
        raise SourceError(problem)
    return VideoFileSource(spec, realtime=realtime)


SOURCES = Registry("source")
SOURCES.register("camera", _camera, help="a webcam index (0, 1, ...)", matches=is_camera_index, live=True)
SOURCES.register(
    "stream",
    _stream,
    help="a stream URL (rtsp://, http://...)",
    matches=is_stream_url,
    live=True,
)
SOURCES.register("images", _images, help="an image or a folder of images", matches=_is_images)
SOURCES.register("video", _video, help="a video file", matches=lambda s: True)


def open_source(spec: str, *, realtime: bool = False, width: int = 1280, height: int = 720, fps: int = 30) -> Source:
    """Open a source from what a user types: `0`, `clip.mp4`, `rtsp://...`, `photo.jpg`, `folder/`."""
    spec = str(spec)
    return SOURCES.kind_of(spec).factory(spec, realtime=realtime, width=width, height=height, fps=fps)


def list_cameras() -> list[int]:
    """Indices of the cameras that open and deliver a frame."""
    return list(probe_webcams())
