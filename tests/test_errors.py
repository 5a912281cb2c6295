"""An error as the user reads it (`fercam.errors`): one line, never empty, a full disk said plainly."""

from __future__ import annotations

import errno

from fercam.errors import one_line, os_reason


def test_one_line_is_the_first_line_or_the_type() -> None:
    assert one_line(ValueError("  bad size 0x0\nTraceback-like detail\n")) == "bad size 0x0"
    assert one_line(RuntimeError()) == "RuntimeError"
    assert one_line(OSError("  \n  ")) == "OSError"


def test_os_reason_keeps_the_systems_words_and_names_a_full_disk() -> None:
    assert os_reason(OSError(errno.ENOENT, "No such file or directory", "/tmp/x.mp4")) == "No such file or directory"
    assert os_reason(OSError(errno.ENOSPC, "No space left on device", "/tmp/x.mp4")) == "no space left on the device"
    assert os_reason(ValueError("Invalid data found when processing input\nmore")) == (
        "Invalid data found when processing input"
    )
    assert os_reason(EOFError()) == "EOFError"
