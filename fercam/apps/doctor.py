"""`fercam doctor`: checks each link of webcam -> model -> virtual camera (and the microphone and tray beside
them), and for a broken one says what still works without it and how to fix it: one diagnosis per cause.

This module is the command: the checks' order, one line each, and the verdict and exit code. The checks
themselves are small functions returning a `Check`, in `doctor_software` (Python, packages, models: critical)
and `doctor_devices` (webcam, virtual camera, microphone, desktop: FER Cam runs without them); their slow or
machine-bound parts are keyword arguments, so tests can swap them for fakes.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from fercam.apps.doctor_devices import (
    check_display,
    check_microphone,
    check_tray,
    check_video_devices,
    check_virtual_camera,
    check_webcams,
)
from fercam.apps.doctor_software import (
    REQUIREMENTS,
    Check,
    check_combined_reading,
    check_detector,
    check_model,
    check_package,
    check_python,
)


def default_checks(vcam_backend: str | None = None) -> list[Callable[[], Check]]:
    """The checks in the order they are printed: environment, packages, models, devices, desktop."""
    checks: list[Callable[[], Check]] = [check_python]
    checks += [partial(check_package, req) for req in REQUIREMENTS]
    checks += [check_model, check_combined_reading, check_detector]
    checks += [check_video_devices] if platform.system() == "Linux" else []
    checks += [check_webcams, partial(check_virtual_camera, vcam_backend), check_microphone]
    checks += [check_display, check_tray]
    return checks


def _run_one(check: Callable[[], Check]) -> Check:
    """A bug in one check must not hide the others."""
    try:
        return check()
    except Exception as exc:
        name = getattr(check, "__name__", getattr(getattr(check, "func", None), "__name__", "check"))
        return Check(name, False, f"the check itself crashed: {type(exc).__name__}: {exc}", "report this bug")


def run_doctor(
    *,
    vcam_backend: str | None = None,
    out: Callable[[str], Any] = print,
    checks: Sequence[Callable[[], Check]] | None = None,
) -> int:
    """Print one line per check and a verdict. Exit code 1: a critical check failed (FER Cam cannot run);
    2: it runs, but the webcam -> overlay -> virtual camera path misses a part (a file or photo and the window
    work); 0: that path works (other warnings, such as the microphone or the tray, are said but do not count)."""
    results = []
    for check in default_checks(vcam_backend) if checks is None else checks:
        results.append(_run_one(check))
        out(results[-1].line())
    failed = [r.name for r in results if r.critical and not r.ok]
    if failed:
        out(f"FER Cam cannot run: fix {', '.join(failed)} (see the fixes above), then run `fercam doctor` again.")
        return 1
    missing = [r.name for r in results if not r.ok and r.name in ("webcam", "virtual camera")]
    if missing:
        out(
            "FER Cam runs here with a video file, a photo or a stream as the camera, in its window, the OBS overlay "
            f"and `fercam analyze`; the live camera for call apps also needs: {', '.join(missing)} (fixes above)."
        )
        return 2
    out("FER Cam can run: webcam -> emotion overlay -> virtual camera.")
    return 0
