"""Picture sources: an image, or a folder of images, read once each (`ImageSource`) or shown as a
camera (`StillCamera`). Both satisfy `fercam.contracts.Source`; `fercam.sources.open_source` picks them
for what a user types (`photo.jpg`, `folder/`).
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from fercam.contracts import Closing, SourceError
from fercam.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def image_paths(path: Path) -> list[Path]:
    """The image itself, or every image file in the folder sorted by name (a FIFO named x.jpg would block)."""
    paths = [path]
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise SourceError(f"no images in folder: {path}")
    return paths


MIN_IMAGE_SIDE = 16  # smaller than this holds no face the detector could find
MAX_IMAGE_PIXELS = 178_956_970  # Pillow's own limit: a 200-megapixel phone photo passes, a decompression bomb not


def load_picture(path: Path) -> np.ndarray:
    """A picture as BGR, or a SourceError that says what is wrong with it. Its size is read from its header
    first: a file of a few kB may declare billions of pixels, which would take gigabytes to decode."""
    _check_pixels(path)
    with _decoder_messages() as said:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if said and image is not None:  # decoded despite damage (libjpeg's "Premature end of JPEG file")
        log.warning("%s is damaged: %s", path, "; ".join(said))
    if image is None:
        raise SourceError(f"cannot read image: {path} (not an image OpenCV can decode, or too large)")
    height, width = image.shape[:2]
    if min(width, height) < MIN_IMAGE_SIDE:
        raise SourceError(
            f"{path} is {width}x{height} pixels: too small to hold a face (at least {MIN_IMAGE_SIDE} on each side)"
        )
    return image


@contextmanager
def _decoder_messages():
    """Lines a C decoder prints on the process's stderr (libjpeg's), caught to be said as one warning of ours
    instead of leaking around it."""
    said: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            said += [line.strip() for line in caught.read().decode(errors="replace").splitlines() if line.strip()]


def _open_header(path: str | Path):
    """The picture opened by Pillow, which reads its header only (the pixels on demand)."""
    import warnings

    from PIL import Image

    with warnings.catch_warnings():  # Pillow warns from half its limit: our one-line error says it
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _check_pixels(path: Path) -> None:
    from PIL import Image

    limit = f"at most {MAX_IMAGE_PIXELS // 1_000_000} megapixels"
    try:
        with _open_header(path) as image:
            width, height = image.size
    except Image.DecompressionBombError:
        raise SourceError(f"{path} is too large to analyse ({limit}): scale it down first") from None
    except (OSError, ValueError):  # not a format Pillow knows: OpenCV may still read it, and says if not
        return
    if width * height > MAX_IMAGE_PIXELS:
        raise SourceError(f"{path} is {width}x{height} pixels, too large to analyse ({limit}): scale it down first")


def is_animated(path: str | Path) -> bool:
    """A picture with several frames (an animated WebP), of which OpenCV would read only the first."""
    from PIL import Image

    try:
        with _open_header(path) as image:
            return getattr(image, "n_frames", 1) > 1
    except (OSError, ValueError, Image.DecompressionBombError):  # read, and refused, as a still picture
        return False


class AnimatedPicture(Closing):
    """Every frame of an animated picture (WebP), each at its time from its own delay, like a short video."""

    live = False
    reconnects = False

    def __init__(self, path: str | Path) -> None:
        _check_pixels(Path(path))
        self._image = _open_header(path)
        self.name, self.frame_count = Path(path).name, self._image.n_frames
        self.fps = 1000 / (self._image.info.get("duration") or 100)
        self._index, self.end_time = 0, 0.0

    def read(self) -> Frame | None:
        if self._index >= self.frame_count:
            return None
        self._image.seek(self._index)
        image = cv2.cvtColor(np.asarray(self._image.convert("RGB")), cv2.COLOR_RGB2BGR)
        frame = Frame(image, self._index, self.end_time)
        self.end_time += (self._image.info.get("duration") or 100) / 1000  # ms; 0 or missing: 10 a second
        self._index += 1
        return frame

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self._image.close()


class ImageSource(Closing):
    """One image, or every image in a folder (sorted by name), each read once."""

    live = False
    reconnects = False
    fps = 1.0

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        self.paths = image_paths(path)
        self.name = path.name
        self.frame_count = len(self.paths)
        self._next = self._sent = 0
        self.end_time = 0.0

    def read(self) -> Frame | None:
        """The next image that can be read; in a folder, one that cannot is skipped with a warning."""
        while self._next < len(self.paths):
            path = self.paths[self._next]
            self._next += 1
            try:
                image = load_picture(path)
            except SourceError as exc:
                if len(self.paths) == 1:
                    raise
                log.warning("skipped %s", exc)
                continue
            self._sent += 1
            self.end_time = float(self._sent)  # each picture stands for a second
            return Frame(image, self._sent - 1, float(self._sent - 1))
        return None

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self._next = len(self.paths)


class StillCamera(Closing):
    """An image, or a folder of images, as a camera: the picture again at `fps`, fitted into `size`, until
    closed (a folder shows each picture for `slide_s` in turn, then starts again). Live outputs keep their
    rate and the overlays stay on the faces, as with a webcam pointed at a photo."""

    live = True
    reconnects = False
    frame_count = None  # endless, like a camera

    def __init__(
        self, path: str | Path, *, fps: float = 30.0, size: tuple[int, int] = (1280, 720), slide_s: float = 3.0
    ) -> None:
        path = Path(path)
        self.paths, self.name = image_paths(path), path.name
        self.fps, self.size, self.slide_s = fps, size, slide_s
        self._shown: tuple[int, np.ndarray] | None = None  # (which path, its picture), decoded once
        self._index, self._closed = 0, False
        self._start = self._due = time.monotonic()

    def read(self) -> Frame | None:
        if self._closed:
            return None
        time.sleep(max(0.0, self._due - time.monotonic()))
        now = time.monotonic()
        late = now - self._due
        self._due = (now if late > 2 / self.fps else self._due) + 1 / self.fps  # after a stall: no burst of frames
        elapsed = now - self._start
        image = self._picture(int(elapsed / self.slide_s) % len(self.paths))
        self._index += 1
        return Frame(image, self._index - 1, elapsed)

    def _picture(self, which: int) -> np.ndarray:
        if self._shown is None or self._shown[0] != which:
            image = load_picture(self.paths[which])
            height, width = image.shape[:2]
            scale = min(self.size[0] / width, self.size[1] / height)
            if scale < 1:  # shrink into the output, never enlarge
                image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
            self._shown = which, image
        return self._shown[1]

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self._closed = True
