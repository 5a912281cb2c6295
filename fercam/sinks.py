"""Where annotated frames go: the "FER Cam" virtual camera, a preview window, a video file."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fercam.contracts import Closing, Sink
from fercam.devices import CAMERA_NAME, driver_fix, has_display, video_devices
from fercam.errors import one_line
from fercam.recording import SinkError, VideoFileSink, letterbox
from fercam.registry import Registry

log = logging.getLogger(__name__)

SINK_HELP = "virtualcam, window, or file:PATH"


def camera_candidates(backend: str | None) -> list[tuple[str | None, str | None]]:
    """(backend, device) pairs to try in order, per the platform's conventions."""
    if backend:
        return [(backend, None)]
    if sys.platform.startswith("linux"):
        named = [d.node for d in video_devices() if d.name == CAMERA_NAME]
        return [("v4l2loopback", named[0] if named else None)]
    if sys.platform == "win32":
        return [("unitycapture", CAMERA_NAME), ("obs", None)]
    return [("obs", None)]


class VirtualCameraSink(Closing):
    """The "FER Cam" virtual camera through pyvirtualcam."""

    closed = False  # nobody can close it but us

    def __init__(self, *, width: int = 1280, height: int = 720, fps: int = 30, backend: str | None = None) -> None:
        import pyvirtualcam

        self.width, self.height = width, height
        known = sorted(pyvirtualcam.camera.BACKENDS)
        if backend and backend not in known:
            raise SinkError(
                f"unknown virtual-camera backend {backend!r} (available: {', '.join(known)}); fix: {driver_fix()}"
            )
        errors = []
        for name, device in camera_candidates(backend):
            try:
                self._camera = pyvirtualcam.Camera(
                    width, height, fps, fmt=pyvirtualcam.PixelFormat.BGR, backend=name, device=device
                )
                break
            except (RuntimeError, ValueError, OSError) as exc:
                errors.append(f"{name}: {one_line(exc)}")
        else:
            raise SinkError(f"no virtual camera available ({'; '.join(errors)}); fix: {driver_fix()}")
        log.info("sending to virtual camera %s (%s)", self._camera.device, self._camera.backend)

    @property
    def device(self) -> str:
        return self._camera.device

    def send(self, image: np.ndarray) -> None:
        self._camera.send(letterbox(image, self.width, self.height))

    def close(self) -> None:
        self._camera.close()


class WindowSink(Closing):
    """A preview window; closing it (or pressing q / Esc) asks the pipeline to stop.

    HighGUI must only be called from the main thread (Qt and Cocoa insist), so only the
    headless `run --sink window` uses this; the tray's preview is the FER Cam window page.
    """

    SCREEN_SHARE = 0.9  # the window may take this much of the screen

    def __init__(self, title: str = "FER Cam preview", *, size: tuple[int, int] | None = None) -> None:
        if not has_display():
            raise SinkError("no display for a preview window (DISPLAY is not set); use --sink file:out.mp4")
        self.title, self.size = title, size  # size: the output's; None: each first image's own
        self.closed = False
        self._shown = False
        # GUI_NORMAL: no debug toolbar (zoom, pixel values) that would cover the video.
        cv2.namedWindow(title, cv2.WINDOW_NORMAL | cv2.WINDOW_KEEPRATIO | cv2.WINDOW_GUI_NORMAL)

    @staticmethod
    def screen_size() -> tuple[int, int] | None:
        """The screen's size in pixels where we can ask for it cheaply (X11, Windows), else None."""
        try:
            if sys.platform == "win32":
                import ctypes

                metrics = ctypes.windll.user32.GetSystemMetrics
                return metrics(0), metrics(1)
            if os.environ.get("DISPLAY"):
                from Xlib import display

                screen = display.Display().screen()
                return screen.width_in_pixels, screen.height_in_pixels
        except Exception as exc:  # no Xlib, no X server: the window keeps the image's size
            log.debug("screen size unknown: %s", exc)
        return None

    def fitted(self, width: int, height: int) -> tuple[int, int]:
        """`width` x `height`, shrunk (never enlarged) to fit the screen, proportions kept."""
        screen = self.screen_size()
        if screen is None:
            return width, height
        scale = min(1.0, self.SCREEN_SHARE * screen[0] / width, self.SCREEN_SHARE * screen[1] / height)
        return round(width * scale), round(height * scale)

    def _gone(self) -> bool:
        try:
            return cv2.getWindowProperty(self.title, cv2.WND_PROP_VISIBLE) < 1
        except cv2.error:  # some backends raise once the window is destroyed
            return True

    def send(self, image: np.ndarray) -> None:
        if self.closed:
            return
        if self._shown and self._gone():  # closed with its close button; imshow would reopen it
            self.closed = True
            return
        if not self._shown:
            cv2.resizeWindow(self.title, *self.fitted(*(self.size or (image.shape[1], image.shape[0]))))
            self._shown = True
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.closed = True

    def close(self) -> None:
        try:
            cv2.destroyWindow(self.title)
            cv2.waitKey(1)  # lets the GUI toolkit actually remove it
        except cv2.error:  # already gone with its close button
            pass


class TeeSink(Closing):
    """Several sinks at once, e.g. the virtual camera and a preview window."""

    def __init__(self, sinks: list) -> None:
        self.sinks = sinks

    @property
    def closed(self) -> bool:
        return any(sink.closed for sink in self.sinks)

    def send(self, image: np.ndarray) -> None:
        for sink in self.sinks:
            sink.send(image)

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _virtualcam(spec: str, *, width: int, height: int, fps: float, vcam_backend: str | None = None, **_o):
    return VirtualCameraSink(width=width, height=height, fps=round(fps), backend=vcam_backend)


def _window(spec: str, *, width: int, height: int, **_options):
    return WindowSink(size=(width, height))


def _file(
    spec: str, *, fps: float, overwrite: bool = False, file_size: tuple[int, int] | None = None, media_time=None, **_o
):
    path = Path(spec[5:])
    if os.path.lexists(path) and not overwrite:
        raise SinkError(f"{path} already exists; add --overwrite to replace it")
    return VideoFileSink(path, fps=fps, size=file_size, media_time=media_time, on_grid=True)


SINKS = Registry("sink")
SINKS.register("virtualcam", _virtualcam, help="virtualcam", matches=lambda s: s == "virtualcam", live=True)
SINKS.register(
    "window",
    _window,
    help="window",
    matches=lambda s: s == "window",
    live=True,
    unavailable=lambda: None if has_display() else "no display",
)
SINKS.register("file", _file, help="file:PATH", matches=lambda s: s.startswith("file:") and len(s) > 5)


def sink_parts(spec: str) -> list[str]:
    """The sinks in `a+b` (a file path may itself hold a "+")."""
    return [spec] if spec.startswith("file:") else spec.split("+")


def open_with_fallback(spec: str, fallback: Callable[[SinkError], Sink] | None, **options) -> Sink:
    """The sink `spec` names (`open_sink`'s options); where it is the virtual camera and that cannot open,
    what `fallback(error)` gives instead (a preview), when there is one."""
    try:
        return open_sink(spec, **options)
    except SinkError as exc:
        if spec != "virtualcam" or fallback is None:
            raise
        return fallback(exc)


def open_sink(
    spec: str,
    *,
    width: int = 1280,
    height: int = 720,
    fps: float = 30,
    vcam_backend: str | None = None,
    overwrite: bool = False,
    file_size: tuple[int, int] | None = None,
    media_time: Callable[[], float] | None = None,
):
    """A sink from its CLI name: `virtualcam`, `window` or `file:PATH`; `a+b` sends to both.

    `file_size`: a file's frame size (None: its first frame's, so a recording keeps the source's size).
    `media_time`: when the frame being sent was captured, in seconds (a live FrameClock): a file's frames keep
    those times (None: they follow one another at `fps`)."""
    options = {"width": width, "height": height, "fps": fps, "vcam_backend": vcam_backend, "overwrite": overwrite}
    options["file_size"], options["media_time"] = file_size, media_time
    parts = sink_parts(spec)
    if len(parts) > 1:
        return TeeSink([open_sink(part, **options) for part in parts])
    try:
        kind = SINKS.kind_of(spec)
    except ValueError:
        raise SinkError(f"unknown sink {spec!r}: use {SINK_HELP}") from None
    return kind.factory(spec, **options)
