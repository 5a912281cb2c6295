"""What a live frame's work costs when its thread slept before it, as a camera's pace makes it, against back to back.

    PYTHONPATH=. python tools/idle_penalty.py [--clip ../shared/media/fer_woman2.mp4] [--calls 200] [--camera-s 10]

Each part runs on one thread, `--calls` times back to back, then as many times with a camera period (33 ms) of
sleep before each call; it prints the CPU ms a call of both and their ratio. The parts are the live pipeline's:
decoding the clip's next frame (PyAV, as `fercam bench` replays it), scaling it to 1280x720 (what the bench's
camera does), copying that frame (what `annotate` does before drawing), and one face through the second opinion
and through our model (one view, one thread, as live reads it). The whole capture the bench replays (decode and
scale, paced at 30 fps) is timed last, in CPU cores, as `fercam bench` counts them. docs/PERFORMANCE.md has the
figures.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from fercam.apps.bench.parts import TiledSource
from fercam.emotion import load_classifier
from fercam.media import VideoReader
from fercam.second_opinion import ALIGNED_SIZE, AlignedEmotionModel

PERIOD_S = 1 / 30


def cpu_ms(call, calls: int, sleep_s: float) -> float:
    """CPU ms of this thread a call, with `sleep_s` of sleep before each."""
    spent = 0.0
    for _ in range(calls):
        if sleep_s:
            time.sleep(sleep_s)
        started = time.thread_time()
        call()
        spent += time.thread_time() - started
    return spent / calls * 1000


def parts(clip: Path) -> dict:
    reader = VideoReader(clip)
    frames = reader.frames()

    def decode():
        nonlocal frames
        if next(frames, None) is None:
            reader.rewind()
            frames = reader.frames()

    small = reader.size
    picture = np.random.default_rng(0).integers(0, 256, (small[1], small[0], 3), np.uint8)
    frame = cv2.resize(picture, (1280, 720))
    face = np.random.default_rng(1).integers(0, 256, (1, ALIGNED_SIZE, ALIGNED_SIZE, 3), np.uint8)
    grey = np.random.default_rng(2).integers(0, 256, (1, 48, 48), np.uint8)
    second, ours = AlignedEmotionModel(), load_classifier(views="single", num_threads=1)  # live: one view a call
    return {
        "decode the clip's next frame": decode,
        "scale it to 1280x720": lambda: cv2.resize(picture, (1280, 720), interpolation=cv2.INTER_LINEAR),
        "copy a 1280x720 frame": frame.copy,
        "second opinion, one face": lambda: second.read_aligned(face),
        "our model, one face": lambda: ours.predict_faces(grey),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clip", type=Path, default=Path("../shared/media/fer_woman2.mp4"))
    parser.add_argument("--calls", type=int, default=200, help="calls of each part, back to back and paced")
    parser.add_argument("--camera-s", type=float, default=10.0, help="seconds the bench's camera is timed")
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as live: its threads are its parallelism
    print(f"{'part':32s} {'back to back':>13s} {'after 33 ms':>12s} {'ratio':>6s}")
    for name, call in parts(args.clip).items():
        call()  # loaded and warm
        busy, paced = cpu_ms(call, args.calls, 0.0), cpu_ms(call, args.calls, PERIOD_S)
        print(f"{name:32s} {busy:10.2f} ms {paced:9.2f} ms {paced / busy:6.1f}")
    source = TiledSource(str(args.clip), (1280, 720), 1, 30)
    started, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - started < args.camera_s:
        source.read()
    cores = (time.process_time() - cpu) / (time.monotonic() - started)
    print(f"the bench's camera alone (decode and scale, paced at 30 fps): {cores:.3f} of a core")
    source.close()


if __name__ == "__main__":
    main()
