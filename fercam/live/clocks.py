"""The live threads' clocks, both on `time.monotonic()`: when the picture being sent was captured (a recording's
clock) and where a camera frame's own time falls (so a mouth meets the sound said with it)."""

from __future__ import annotations

import time


class FrameClock:
    """When the picture being sent was captured (time.monotonic()): a recording's clock. One per output, shared by
    every runner that feeds it, so the time a settings change takes is a pause in the file, not a cut, and a
    24 fps camera's frames are 1/24 s apart whatever the output's rate."""

    def __init__(self) -> None:
        self.time = time.monotonic()

    def __call__(self) -> float:
        return self.time


class CameraClock:
    """A frame's time (its source's own clock) on `time.monotonic()`'s: `saw(frame time, when it was read)` as each
    frame is shown, from the first one on; `at(frame time)` for a frame being judged. It adds the least delay yet seen
    between a frame's time and its reading, least of all time, not of late: a clip replayed as a camera falls behind
    the wall clock on a busy machine (while its models load, say), and its picture must still meet the sound said
    with it (a recording heard as the microphone keeps the wall clock). Afresh when time goes back (the source was
    reopened)."""

    def __init__(self) -> None:
        self._gap, self._last = float("inf"), float("-inf")

    def saw(self, frame_time: float, captured: float | None = None) -> None:
        """`captured`: when the frame was read (`time.monotonic()`; default now)."""
        if frame_time < self._last:
            self._gap = float("inf")
        captured = time.monotonic() if captured is None else captured
        self._gap, self._last = min(self._gap, captured - frame_time), frame_time

    def at(self, frame_time: float) -> float:
        if self._gap == float("inf"):  # judged before shown: the clock starts now
            self.saw(frame_time)
        return frame_time + self._gap
