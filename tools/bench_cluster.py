"""Throughput of `fercam analyze` on one archive: video seconds analysed per wall second (start-up
included) and CPU seconds spent per video second, for the plain local run with 1 and 2 processes and
for `--cluster local` with 1 and 2 Ray workers.

    python tools/bench_cluster.py [--copies 2]     (from the project root; media from ../shared/media)

For plain runs it also gives CPU seconds per video second (the process tree's), which stays meaningful
on a machine that other jobs load, as wall-clock throughput does not; Ray's workers are not children that
the driver waits for, so their CPU time is not counted and the column reads n/a.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

CLIPS = ("fer_woman2", "fr_short_hamilton_clip", "fer_test")
RUNS = {
    "plain, 1 process": ["--jobs", "1"],
    "plain, 2 processes": ["--jobs", "2"],
    "Ray local, 1 worker": ["--cluster", "local", "--jobs", "1"],
    "Ray local, 2 workers": ["--cluster", "local", "--jobs", "2"],
}


def video_seconds(folder: Path) -> float:
    total = 0.0
    for path in folder.glob("*.mp4"):
        capture = cv2.VideoCapture(str(path))
        total += capture.get(cv2.CAP_PROP_FRAME_COUNT) / capture.get(cv2.CAP_PROP_FPS)
        capture.release()
    return total


def timed(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one `fercam analyze` process tree."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    subprocess.run([sys.executable, "-m", "fercam", "analyze", *args], check=True, capture_output=True)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--copies", type=int, default=2)
    parser.add_argument("--media", default="../shared/media")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "archive"
        archive.mkdir()
        for copy in range(args.copies):
            for clip in CLIPS:
                shutil.copy(Path(args.media) / f"{clip}.mp4", archive / f"{clip}-{copy}.mp4")
        seconds = video_seconds(archive)
        print(f"{len(CLIPS) * args.copies} inputs, {seconds:.1f} s of video")
        for i, (name, options) in enumerate(RUNS.items()):
            wall, cpu = timed([str(archive), "-o", str(Path(tmp) / f"out-{i}"), *options])
            cpu_rate = "n/a" if "--cluster" in options else f"{cpu / seconds:.2f}"
            rates = f"{seconds / wall:.2f} video s per wall s, {cpu_rate} CPU s per video s"
            print(f"{name}: {wall:.1f} wall s, {rates}")


if __name__ == "__main__":
    main()
