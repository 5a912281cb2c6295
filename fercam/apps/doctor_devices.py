"""`fercam doctor`'s checks of this machine: video devices, webcam, virtual camera, microphone, display and tray.

FER Cam runs without any of them (a file or photo stands in for the webcam, the window for the virtual camera),
so none is critical: each failed one says, beside its fix, what still works without the part. Kept apart from
the install's checks (`doctor_software`) because these probe hardware and the desktop, through keyword-argument
seams (prober, camera factory, sound query, environment) that tests replace with fakes.
"""

from __future__ import annotations

import importlib.util
import os
import platform
from collections.abc import Callable, Mapping
from typing import Any

from fercam import driver_facts, linux_driver
from fercam.apps.doctor_software import Check, pip_fix
from fercam.apps.tray.check import has_typelib, tray_verdict
from fercam.devices import WEBCAM_INDICES, driver_fix, probe_webcams
from fercam.driver_facts import DriverFacts

VCAM_FORMAT = {"width": 1280, "height": 720, "fps": 30}
WEBCAM_FIX = {
    "Linux": "connect a webcam, close apps using it, allow access: sudo usermod -aG video $USER (then log in again)",
    "Windows": "connect a webcam and allow desktop apps in Settings > Privacy & security > Camera",
    "Darwin": "connect a webcam and allow FER Cam (or your terminal) in System Settings > Privacy & Security > Camera",
}
# What still works when a part is missing: said on its line, and summed up at the end.
WITHOUT_WEBCAM = "a video file, a photo or a stream works as the camera (--source, or the window's camera box)"
WITHOUT_VCAM = "the FER Cam window and its OBS overlay show the annotated video; call apps need the camera"
WITHOUT_MICROPHONE = "everything but the live voice badge works; `fercam analyze` still reads recordings' voices"
WITHOUT_DISPLAY = "`fercam window` (a browser page), `fercam run --no-tray` and `fercam analyze` work"
PORTAUDIO_FIX = {
    "Linux": "sudo apt install libportaudio2 (Fedora: sudo dnf install portaudio)",
    "Darwin": "brew install portaudio, or reinstall sounddevice: pip install --force-reinstall sounddevice",
    "Windows": "reinstall sounddevice (its wheel brings PortAudio): pip install --force-reinstall sounddevice",
}
MICROPHONE_FIX = {
    "Linux": "connect a microphone and check it is not muted (pavucontrol or your desktop's sound settings)",
    "Windows": "connect a microphone and allow desktop apps in Settings > Privacy & security > Microphone",
    "Darwin": "connect a microphone and allow FER Cam (or your terminal) in System Settings > Privacy & Security > "
    "Microphone",
}


def for_system(fixes: Mapping[str, str], system: str) -> str:
    """The fix for this OS, Linux's for one the table does not name."""
    return fixes.get(system, fixes["Linux"])


def check_video_devices(*, facts: Callable[[], DriverFacts] = driver_facts.read_facts) -> Check:
    """Linux: the video devices, and the "FER Cam" one or why v4l2loopback gave none (the installer's diagnosis)."""
    known = facts()
    verdict = linux_driver.classify(known)
    listed = ", ".join(f"{d.node} '{d.name}'" + (" (v4l2loopback)" if d.loopback else "") for d in known.devices)
    if verdict.ready:
        return Check("video devices", True, listed, critical=False)
    detail = f"{listed or 'no /dev/video* devices'}; {verdict.cause}"
    return Check("video devices", False, detail, verdict.fix(), critical=False)  # its fix says what still works


def linux_driver_fix(verdict=None) -> str:
    """The fix for a virtual camera that cannot be created, from what the system says about v4l2loopback."""
    verdict = verdict or linux_driver.diagnose()
    if not verdict.ready:
        return verdict.fix()
    return (
        f"the driver is ready ({verdict.cause}): close any other program sending video into it, and allow access: "
        "sudo usermod -aG video $USER (then log in again)"
    )


def webcam_list() -> list[str]:
    """The webcams that deliver a frame, as "index (WxH)"."""
    return [f"{index} ({size})" for index, size in probe_webcams().items()]


def check_webcams(*, prober: Callable[[], list[str]] = webcam_list, system: str = platform.system()) -> Check:
    fix = for_system(WEBCAM_FIX, system)
    try:
        cameras = prober()
    except Exception as exc:
        return Check("webcam", False, f"probing failed: {exc}", fix, critical=False, without=WITHOUT_WEBCAM)
    if not cameras:
        tried = f"none opened (tried {WEBCAM_INDICES[0]}-{WEBCAM_INDICES[-1]})"
        return Check("webcam", False, tried, fix, critical=False, without=WITHOUT_WEBCAM)
    return Check("webcam", True, "opens: " + ", ".join(cameras))


def _pyvirtualcam_camera(**kwargs: Any) -> Any:
    import pyvirtualcam

    return pyvirtualcam.Camera(**kwargs)


def check_virtual_camera(
    backend: str | None = None,
    *,
    factory: Callable[..., Any] = _pyvirtualcam_camera,
    system: str = platform.system(),
    diagnose: Callable[[], Any] = linux_driver.diagnose,
) -> Check:
    """Tries the devices the sink tries, in its order (`sinks.camera_candidates`), so the two cannot disagree.
    On Linux, a driver that is not ready is the video-devices line's diagnosis: this line points there
    rather than repeating it with pyvirtualcam's generic "Did you run 'modprobe v4l2loopback'?"."""
    from fercam.sinks import camera_candidates  # imports OpenCV, which the package lines check first

    errors = []
    for name, device in camera_candidates(backend):
        try:
            camera = factory(**VCAM_FORMAT, backend=name, device=device)
            break
        except Exception as exc:  # pyvirtualcam raises RuntimeError, ValueError or OSError, by backend
            errors.append(f"{name}: {'; '.join(str(exc).splitlines()) or type(exc).__name__}")
    else:
        detail = f"cannot be created: {'; '.join(errors)}"
        if system != "Linux":
            fix = driver_fix(system)
        elif (verdict := diagnose()).ready:
            fix = linux_driver_fix(verdict)
        else:
            detail = "cannot be created: the v4l2loopback driver is not ready (why and the fix: video devices above)"
            fix = ""
        return Check("virtual camera", False, detail, fix, False, WITHOUT_VCAM)
    try:
        detail = f"{camera.device} via {getattr(camera, 'backend', name or '?')}"
    finally:
        camera.close()
    return Check("virtual camera", True, detail)


def check_display(*, env: Mapping[str, str] = os.environ, system: str = platform.system()) -> Check:
    if system != "Linux":
        return Check("display", True, f"{system} desktop session", critical=False)
    shown = [f"{key}={env[key]}" for key in ("WAYLAND_DISPLAY", "DISPLAY") if env.get(key)]
    if shown:
        return Check("display", True, ", ".join(shown), critical=False)
    fix = "start FER Cam from your desktop session (its terminal, its menu, or log in to one)"
    detail = "DISPLAY and WAYLAND_DISPLAY are unset: no tray icon or preview"
    return Check("display", False, detail, fix, False, WITHOUT_DISPLAY)


def default_input() -> str:
    """The name of the default input device; raises ImportError (no sounddevice), OSError (no PortAudio) or
    sounddevice's error (no input device)."""
    import sounddevice

    return str(sounddevice.query_devices(kind="input")["name"])


def check_microphone(*, query: Callable[[], str] = default_input, system: str = platform.system()) -> Check:
    """PortAudio and an input device: what the live voice badge needs."""
    try:
        name = query()
    except ImportError:
        fix = pip_fix("sounddevice")
        return Check("microphone", False, "sounddevice is not installed", fix, False, WITHOUT_MICROPHONE)
    except OSError as exc:  # the package is there but its PortAudio library is not
        fix = for_system(PORTAUDIO_FIX, system)
        detail = f"the PortAudio library does not load ({exc})"
        return Check("microphone", False, detail, fix, False, WITHOUT_MICROPHONE)
    except Exception as exc:  # sounddevice.PortAudioError or ValueError: no input device
        fix = for_system(MICROPHONE_FIX, system)
        detail = f"no input device ({exc})" if str(exc) else "no input device"
        return Check("microphone", False, detail, fix, False, WITHOUT_MICROPHONE)
    return Check("microphone", True, f"PortAudio loads; default input: {name}", critical=False)


def _has_module(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def check_tray(
    *,
    env: Mapping[str, str] = os.environ,
    system: str = platform.system(),
    has_module: Callable[[str], bool] = _has_module,
    has_typelib: Callable[[str, str], bool] = has_typelib,
) -> Check:
    """Which tray backend FER Cam gets and what the user can do with it (a warning where it has no menu)."""
    ok, detail, fix = tray_verdict(env, system, has_module, has_typelib)
    return Check("tray", ok, detail, fix, critical=False)
