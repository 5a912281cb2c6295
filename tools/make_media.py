"""Make the media the repository carries from the originals listed in ../shared/media/SOURCES.md.

Writes tests/media/ (small copies of the public-domain and MIT photos and clips: see its README.md) and
fercam/samples/portrait.mp4 (`fercam bench`'s clip when no webcam opens). Only public-domain or MIT
originals are used; each output is re-encoded or resized so that the whole stays under 1 MB. Needs ffmpeg
with libx264.

Usage: python tools/make_media.py [SHARED_MEDIA]   (default ../shared/media)
"""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
X264 = ["-c:v", "libx264", "-preset", "veryslow", "-crf", "23", "-pix_fmt", "yuv420p", "-movflags", "+faststart"]


def reencode(clip: Path, out: Path) -> None:
    """The same frames at the same times (`passthrough`: tests count them), about a fifth of the bytes."""
    command = ["ffmpeg", "-v", "error", "-y", "-i", str(clip), "-map", "0:v", "-an", "-fps_mode", "passthrough"]
    subprocess.run([*command, *X264, str(out)], check=True)


def drifting_camera(portrait: np.ndarray, out: Path, *, size=(640, 360), fps=30, seconds=6) -> None:
    """The portrait framed like a webcam close-up that drifts and zooms a little, so that the live pipeline
    has motion to follow (a still picture would let it skip most detection)."""
    width, height = size
    command = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "bgr24", "-s", f"{width}x{height}"]
    encoder = subprocess.Popen([*command, "-r", str(fps), "-i", "-", *X264, str(out)], stdin=subprocess.PIPE)
    frames = fps * seconds
    for i in range(frames):
        t = 2 * math.pi * i / frames  # one period per loop: the clip repeats without a jump
        zoom = 1 + 0.05 * math.sin(t)
        w, h = 880 / zoom, 495 / zoom  # the crop of the 910x1137 portrait around the head and shoulders
        cx, cy = 455 + 15 * math.sin(2 * t), 285 + 12 * math.sin(t + 1)
        scale = width / w
        warp = np.float32([[scale, 0, -(cx - w / 2) * scale], [0, scale, -(cy - h / 2) * scale]])
        frame = cv2.warpAffine(portrait, warp, size, flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)
        encoder.stdin.write(frame.tobytes())
    encoder.stdin.close()
    if encoder.wait():
        raise SystemExit(f"ffmpeg failed writing {out}")


def main(shared: Path) -> None:
    tests, samples = ROOT / "tests" / "media", ROOT / "fercam" / "samples"
    tests.mkdir(exist_ok=True)
    shutil.copyfile(shared / "fer_justin.jpg", tests / "fer_justin.jpg")  # already small
    for name in ("fer_test.mp4", "fer_woman2.mp4"):
        reencode(shared / name, tests / name)
    portrait = cv2.imread(str(shared / "fr_obama.jpg"))
    half = cv2.resize(portrait, (455, 569), interpolation=cv2.INTER_AREA)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 90]
    cv2.imwrite(str(tests / "fr_obama.jpg"), half, jpeg)
    # Two people, arms crossed: the portrait twice (beside its mirror image, BlazePose mixes up the hands).
    cv2.imwrite(str(tests / "two_people.jpg"), np.hstack([half, half]), jpeg)
    astronaut = cv2.imread(str(shared / "skimage_astronaut.png"))
    cv2.imwrite(str(tests / "skimage_astronaut.jpg"), astronaut, [cv2.IMWRITE_JPEG_QUALITY, 92])
    drifting_camera(portrait, samples / "portrait.mp4")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "media")
