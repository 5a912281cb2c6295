"""How a run stops early and still finishes its files: SIGTERM (and SIGHUP, a closed terminal) is taken as
Ctrl-C, and pool workers stop when their parent says so (a signal reaching them directly would cut their
finishing short)."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

_stop = None  # in a pool worker: the parent's "stop now" event
_received = signal.SIGINT  # the signal that stopped this run, for its exit code
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be, so every file is finished the same way."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextmanager
def stop_on_signals():
    """SIGTERM (kill, a service stop) and SIGHUP end a command as Ctrl-C does; a repeat is ignored so that
    the finishing is not cut short. Only the main thread gets signals: elsewhere this does nothing."""
    global _received
    _received = signal.SIGINT
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {number: signal.signal(number, _terminate_once) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _terminate_once(signum, _frame) -> None:
    global _received
    _received = signum
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
    raise Terminated(signum)


def exit_code() -> int:
    """128 + the number of the signal that stopped the run (Ctrl-C: 130, SIGTERM: 143, SIGHUP: 129)."""
    return 128 + _received


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
