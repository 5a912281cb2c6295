"""How a command stops early and still finishes its files.

Every command (`fercam.apps.cli`): SIGTERM (kill, a service stop) and SIGHUP (a closed terminal) raise
`Terminated`, a KeyboardInterrupt, wherever Ctrl-C would, so the same `finally` blocks finish the files.
`fercam analyze` (`cooperative=True`): Ctrl-C, SIGTERM and SIGHUP only ask for a stop; the frame loop
checks at each frame boundary (`check_stop`), so a stopped input ends on a whole frame (the video, the
timeline and the count agree) and its finishing is never cut short. A second signal stops at once.
Pool workers ignore signals, which reach the whole process group, and follow their parent's event.
The exit code is 128 + the signal's number either way (Ctrl-C 130, SIGTERM 143, SIGHUP 129).
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager

TERMINATING = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))

_received = signal.SIGINT  # the signal that stopped this command, for its exit code
_requested = False  # cooperative mode: set by this process's signal handler (a plain flag: safe there)
_event = None  # in a pool worker: the parent's multiprocessing.Event


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C would be."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def stop_requested() -> bool:
    return _requested or (_event is not None and _event.is_set())


def check_stop() -> None:
    """Raise KeyboardInterrupt at a frame boundary once a stop was asked for."""
    if stop_requested():
        raise KeyboardInterrupt


def exit_code() -> int:
    return 128 + _received


def _terminate(signum, _frame) -> None:
    global _received
    _received = signum
    raise Terminated(signum)


def _ask_to_stop(signum, _frame) -> None:
    global _requested, _received
    if _requested:  # the second signal: stop now
        raise KeyboardInterrupt
    _requested, _received = True, signum


@contextmanager
def stop_on_signals(*, cooperative: bool = False):
    """Within: the stop signals end the command (see the module's docstring). Signals reach only the
    main thread: elsewhere this does nothing."""
    global _requested, _received
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested = False
    if not cooperative:
        _received = signal.SIGINT
    numbers = (signal.SIGINT, *TERMINATING) if cooperative else TERMINATING
    previous = {number: signal.signal(number, _ask_to_stop if cooperative else _terminate) for number in numbers}
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
    for number in (signal.SIGINT, *TERMINATING):
        signal.signal(number, signal.SIG_IGN)
