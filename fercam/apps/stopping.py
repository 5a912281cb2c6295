"""How a run stops early and still finishes its files: SIGTERM is taken as Ctrl-C, and pool workers stop
when their parent says so (a signal reaching them directly would cut their finishing short)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_stop = None  # in a pool worker: the parent's "stop now" event


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (kill, a service stop) raises KeyboardInterrupt, so it ends a run as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt_once)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt_once(_signum, _frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut the finishing short
    raise KeyboardInterrupt


def worker_init(stop) -> None:
    """A pool worker leaves Ctrl-C and SIGTERM (sent to the whole process group) to its parent, and
    watches `stop` instead."""
    global _stop
    _stop = stop
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def check_stop() -> None:
    """Raise KeyboardInterrupt in a pool worker whose parent was interrupted."""
    if _stop is not None and _stop.is_set():
        raise KeyboardInterrupt
