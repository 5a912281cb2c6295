"""The one-value box between threads: the newest value wins, so nothing queues and latency stays flat."""

from __future__ import annotations

import threading


class LatestSlot:
    """A one-value box: writers replace, readers wait for something newer than they saw."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._value = None
        self.version = 0

    def put(self, value) -> None:
        with self._cond:
            self._value, self.version = value, self.version + 1
            self._cond.notify_all()

    def get(self):
        return self._value

    def wait_newer(self, seen: int, timeout: float) -> tuple[int, object]:
        with self._cond:
            self._cond.wait_for(lambda: self.version > seen, timeout)
            return self.version, self._value
