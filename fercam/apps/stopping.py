"""How a run stops early and still finishes its files: SIGTERM (and SIGHUP, a closed terminal) is taken as
Ctrl-C, and pool workers stop when their parent says so (a signal reaching them directly would cut their
finishing short)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_stop = None  # in a pool worker: the parent's "stop now" event
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM (kill, a service stop) and SIGHUP raise KeyboardInterrupt, so they end a run as Ctrl-C does."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _interrupt_once) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _interrupt_once(_signum, _frame) -> None:
    for number in STOP_SIGNALS:  # a second signal must not cut the finishing short
        signal.signal(number, signal.SIG_IGN)
    raise KeyboardInterrupt


def worker_init(stop) -> None:
    """A pool worker leaves Ctrl-C, SIGTERM and SIGHUP (sent to the whole process group) to its parent,
    and watches `stop` instead."""
    global _stop
    _stop = stop
    for number in (signal.SIGINT, *STOP_SIGNALS):
        signal.signal(number, signal.SIG_IGN)


def check_stop() -> None:
    """Raise KeyboardInterrupt in a pool worker whose parent was interrupted."""
    if _stop is not None and _stop.is_set():
        raise KeyboardInterrupt
