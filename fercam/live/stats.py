"""What LIVE mode reports: frames, analyses, rates, latency, CPU per stage, the current error."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field


@dataclass
class LiveStats:
    """What the tray's status line, the window and `fercam bench` report."""

    frames_sent: int = 0
    analyses: int = 0
    faces: int = 0
    error: str = ""
    camera_lost: bool = False
    latencies_ms: deque = field(default_factory=lambda: deque(maxlen=2000))
    sent_times: deque = field(default_factory=lambda: deque(maxlen=120))
    analysis_times: deque = field(default_factory=lambda: deque(maxlen=120))
    analysis_ms: deque = field(default_factory=lambda: deque(maxlen=2000))  # busy time per analysis
    first_frame_at: float | None = None
    first_annotated_at: float | None = None
    cpu_s: dict = field(default_factory=dict)  # CPU seconds per stage: capture, analysis, render, send

    def charge(self, stage: str, since: float) -> None:
        """Add this thread's CPU time since `since` (a `time.thread_time()`) to `stage`."""
        self.cpu_s[stage] = self.cpu_s.get(stage, 0.0) + time.thread_time() - since

    @staticmethod
    def _rate(times: deque) -> float:
        return (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 and times[-1] > times[0] else 0.0

    @property
    def fps(self) -> float:
        return self._rate(self.sent_times)

    @property
    def analysis_hz(self) -> float:
        return self._rate(self.analysis_times)

    def status_line(self) -> str:
        if self.error:
            state = f"error: {self.error}"
        elif self.camera_lost:
            state = "camera disconnected"
        else:
            state = f"{self.faces} face{'s' if self.faces != 1 else ''}"
        return f"{self.fps:.0f} fps, {state}"
