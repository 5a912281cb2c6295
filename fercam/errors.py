"""An error as the user reads it: one line, in the words of whoever raised it.

The CLI, the window, the tray, `fercam analyze`'s per-input results and the logs say errors this way, so a
message never runs over several lines or, where an error says nothing, comes out empty.
"""

from __future__ import annotations

import errno


def one_line(exc: BaseException) -> str:
    """The first line of what the error says, or its type where it says nothing."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def os_reason(exc: BaseException) -> str:
    """An OS or FFmpeg error in its own words, without the errno and path it repeats; a full disk said plainly."""
    if getattr(exc, "errno", None) == errno.ENOSPC:
        return "no space left on the device"
    text = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return text.splitlines()[0]
