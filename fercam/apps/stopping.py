"""How a run stops early and still finishes its files.

Ctrl-C, SIGTERM (kill, a service stop) and SIGHUP (a closed terminal) only ask for a stop; the frame loop
checks at each frame boundary (check_stop), so a stopped input ends on a whole frame (the video, the
timeline and the count agree) and its finishing is never cut short. A second signal stops at once.
Pool workers ignore signals, which reach the whole process group, and follow their parent's event.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

_requested = False  # set by this process's signal handler: a plain flag, safe to set from a handler
_event = None  # in a pool worker: the parent's multiprocessing.Event


def stop_requested() -> bool:
    return _requested or (_event is not None and _event.is_set())


def check_stop() -> None:
    """Raise KeyboardInterrupt at a frame boundary once a stop was asked for."""
    if stop_requested():
        raise KeyboardInterrupt


def _ask_to_stop(_signum, _frame) -> None:
    global _requested
    if _requested:  # the second signal: stop now
        raise KeyboardInterrupt
    _requested = True


@contextmanager
def stop_on_signals():
    """Within: the stop signals ask for a stop (see the module's docstring) instead of raising anywhere."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = False
    previous = {number: signal.signal(number, _ask_to_stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        _requested = False


def worker_init(event) -> None:
    """A pool worker follows `event`, set by its parent, and leaves the signals to the parent."""
    global _event
    _event = event
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
