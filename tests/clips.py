"""Test clips made on the spot: pictures and a 16 kHz mono sound track muxed into one MP4 (PyAV)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest


def write_clip(path: Path, frames: Iterable[np.ndarray], audio: np.ndarray, fps: float, bit_rate: int = 0) -> None:
    """MPEG-4 video of the BGR `frames` at `fps` (all of one size) and AAC of `audio` (int16, 16 kHz mono)."""
    av = pytest.importorskip("av")
    frames = iter(frames)
    first = next(frames)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=fps)
        video.height, video.width = first.shape[:2]
        video.pix_fmt = "yuv420p"
        if bit_rate:
            video.bit_rate = bit_rate
        sound = container.add_stream("aac", rate=16000, layout="mono")
        for image in (first, *frames):
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        container.mux(video.encode())
        frame = av.AudioFrame.from_ndarray(audio.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = 16000
        container.mux(sound.encode(frame))
        container.mux(sound.encode())
