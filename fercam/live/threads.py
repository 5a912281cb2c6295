"""What LIVE mode sets up for its threads once, before its source opens (`set_up_for_live_threads`)."""

from __future__ import annotations

import ctypes
import os
import sys

import cv2

M_ARENA_MAX = -8  # glibc's malloc.h


def set_up_for_live_threads() -> None:
    """LIVE mode's threads are its parallelism: OpenCV's own pool on top of them (and FFmpeg's decoding
    threads, sized when a capture opens: so call this before opening the source) only adds wake-ups and
    hand-offs on a 2-core laptop (720p, one face: 0.36 -> 0.27 CPU cores in `fercam bench`).

    And on Linux, at most two malloc arenas: glibc gives a thread that allocates while another does an arena of its
    own (up to eight a core), each keeping the frames freed into it, while these threads hand frames to one another
    (1080p, five faces: peak RSS 245-248 -> 236-241 MB, the same CPU; `MALLOC_ARENA_MAX` in the environment still
    wins)."""
    cv2.setNumThreads(1)
    if sys.platform.startswith("linux") and "MALLOC_ARENA_MAX" not in os.environ:
        try:
            ctypes.CDLL(None).mallopt(M_ARENA_MAX, 2)
        except (OSError, AttributeError):  # a C library without mallopt: its own arenas stay
            pass
