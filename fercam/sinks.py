"""Where annotated frames go: the "FER Cam" virtual camera, a preview window, a video file."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import cv2
import numpy as np

log = logging.getLogger(__name__)

CAMERA_NAME = "FER Cam"
SINK_HELP = "virtualcam, window, or file:PATH"


class SinkError(RuntimeError):
    """A sink that cannot be opened; the message names the fix."""


def driver_fix() -> str:
    """The one command (or step) that installs the virtual-camera driver on this OS."""
    if sys.platform.startswith("linux"):
        return 'run `sudo bash installer/linux/install.sh` (installs v4l2loopback with the label "FER Cam")'
    if sys.platform == "win32":
        return "run `powershell -ExecutionPolicy Bypass -File installer\\windows\\install.ps1` (or install OBS Studio)"
    return "install OBS Studio 30+ and start its Virtual Camera once (see README, macOS)"


def loopback_devices(sysfs: Path = Path("/sys/class/video4linux")) -> dict[str, str]:
    """Linux: {"/dev/videoN": label} for every video device, to find the one called "FER Cam"."""
    if not sysfs.is_dir():
        return {}
    return {
        f"/dev/{d.name}": (d / "name").read_text().strip() for d in sorted(sysfs.iterdir()) if (d / "name").is_file()
    }


def camera_candidates(backend: str | None) -> list[tuple[str | None, str | None]]:
    """(backend, device) pairs to try in order, per the platform's conventions."""
    if backend:
        return [(backend, None)]
    if sys.platform.startswith("linux"):
        named = [dev for dev, label in loopback_devices().items() if label == CAMERA_NAME]
        return [("v4l2loopback", named[0] if named else None)]
    if sys.platform == "win32":
        return [("unitycapture", CAMERA_NAME), ("obs", None)]
    return [("obs", None)]


def fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
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


class VirtualCameraSink:
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
                errors.append(f"{name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        else:
            raise SinkError(f"no virtual camera available ({'; '.join(errors)}); fix: {driver_fix()}")
        log.info("sending to virtual camera %s (%s)", self._camera.device, self._camera.backend)

    @property
    def device(self) -> str:
        return self._camera.device

    def send(self, image: np.ndarray) -> None:
        self._camera.send(fit(image, self.width, self.height))

    def close(self) -> None:
        self._camera.close()


class WindowSink:
    """A preview window; closing it (or pressing q / Esc) asks the pipeline to stop.

    HighGUI must only be called from the main thread (Qt and Cocoa insist), so only the
    headless `run --sink window` uses this; the tray's preview is the FER Cam window page.
    """

    SCREEN_SHARE = 0.9  # the window may take this much of the screen

    def __init__(self, title: str = "FER Cam preview") -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise SinkError("no display for a preview window (DISPLAY is not set); use --sink file:out.mp4")
        self.title = title
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
            cv2.resizeWindow(self.title, *self.fitted(image.shape[1], image.shape[0]))
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


class VideoFileSink:
    """An MP4 file; opened on the first frame so its size follows the source."""

    closed = False

    def __init__(self, path: str | Path, *, fps: float = 30.0) -> None:
        self.path = Path(path)
        if not self.path.parent.exists():
            raise SinkError(f"folder does not exist: {self.path.parent}")
        self.fps = fps
        self.frames = 0
        self._writer: cv2.VideoWriter | None = None

    def send(self, image: np.ndarray) -> None:
        if self._writer is None:
            height, width = image.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*"mp4v"), self.fps, (width, height))
            if not self._writer.isOpened():
                raise SinkError(f"cannot write video file: {self.path}")
        self._writer.write(image)
        self.frames += 1

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()


class TeeSink:
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


Sink = VirtualCameraSink | WindowSink | VideoFileSink | TeeSink


def open_sink(spec: str, *, width: int = 1280, height: int = 720, fps: float = 30, vcam_backend: str | None = None):
    """A sink from its CLI name: `virtualcam`, `window` or `file:PATH`; `a+b` sends to both."""
    if "+" in spec and not spec.startswith("file:"):
        return TeeSink(
            [
                open_sink(part, width=width, height=height, fps=fps, vcam_backend=vcam_backend)
                for part in spec.split("+")
            ]
        )
    if spec == "virtualcam":
        return VirtualCameraSink(width=width, height=height, fps=round(fps), backend=vcam_backend)
    if spec == "window":
        return WindowSink()
    if spec.startswith("file:") and len(spec) > 5:
        return VideoFileSink(spec[5:], fps=fps)
    raise SinkError(f"unknown sink {spec!r}: use {SINK_HELP}")
