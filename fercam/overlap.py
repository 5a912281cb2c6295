"""Offline stages overlapped on threads, so a recording's analysis keeps both cores busy while every frame still
goes through each stage in order (`fercam.pipeline.run_offline`): decoding ahead, and the writing behind."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass

from fercam.contracts import Source
from fercam.types import Frame


class ReadAhead:
    """`source.read()` on its own thread, up to `depth` frames ahead of the caller's `read`. An exception in
    reading is raised by the `read` that would have returned that frame. `close` stops reading ahead; it does not
    close `source`, which stays its opener's."""

    def __init__(self, source: Source, depth: int = 4) -> None:
        self._source, self._queue, self._stopping = source, queue.Queue(maxsize=depth), threading.Event()
        self._thread = threading.Thread(target=self._loop, name="fercam-read-ahead", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                item = self._source.read()
            except BaseException as exc:  # raised in the caller's thread, at this frame
                item = _Failed(exc)
            while not self._stopping.is_set():  # a full queue waits for the caller, or for `close`
                try:
                    self._queue.put(item, timeout=0.1)
                    break
                except queue.Full:
                    continue
            if item is None or isinstance(item, _Failed):
                return

    def read(self) -> Frame | None:
        item = self._queue.get()
        if isinstance(item, _Failed):
            raise item.error
        return item

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class InOrder:
    """`step(*item)` for each `put` item, in order, on its own thread, at most `depth` items behind the caller.
    The first exception `step` raises (a full disk, a stop asked for at a frame boundary) is kept: `put` and
    `check` raise it in the caller's thread, and the items after it are dropped."""

    _END = object()

    def __init__(self, step: Callable[..., None], depth: int = 4) -> None:
        self._step, self._queue, self.error = step, queue.Queue(maxsize=depth), None
        # Waited on instead of joining the thread: a join interrupted by Ctrl-C marks the thread as ended while it
        # still runs (CPython 3.11), so a second join would not wait.
        self._done = threading.Event()
        threading.Thread(target=self._loop, name="fercam-in-order", daemon=True).start()

    def _loop(self) -> None:
        while (item := self._queue.get()) is not self._END:
            if self.error is None:  # after an error the rest is only taken off the queue, so `put` never blocks
                try:
                    self._step(*item)
                except BaseException as exc:  # KeyboardInterrupt included: the caller's thread raises it
                    self.error = exc
        self._done.set()

    def put(self, *item) -> None:
        self.check()
        self._queue.put(item)

    def check(self) -> None:
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Wait until every item put so far is done (or dropped after an error). A Ctrl-C meanwhile (the second,
        which stops at once) is raised once they are: the few frames in hand are written whole, not cut off by
        the caller closing the files under them."""
        if not self._done.is_set():
            _uninterrupted(lambda: self._queue.put(self._END), self._done.wait)


def _uninterrupted(*steps: Callable[[], None]) -> None:
    """Each step to its end, then the first KeyboardInterrupt that came meanwhile, if any."""
    interrupted = None
    for step in steps:
        while True:
            try:
                step()
                break
            except KeyboardInterrupt as exc:
                interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted
