"""A loop on a named daemon thread that its owner starts and stops: the voice listener's, the clip microphone's,
who-is-speaking's. One place for the start-and-stop steps, so each owner keeps only its loop."""

from __future__ import annotations

import threading
from collections.abc import Callable


class Worker:
    """`start()` runs `loop()` on a daemon thread called `name`; the loop watches `stopping`, which `stop()` sets
    before waiting for the thread (at most `join_s` seconds; None: until the loop returns)."""

    def __init__(self, name: str, loop: Callable[[], None], *, join_s: float | None = None) -> None:
        self.name, self._loop, self._join_s = name, loop, join_s
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(self._join_s)
            self._thread = None
