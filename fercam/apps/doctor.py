"""`fercam doctor`: checks each link of webcam -> model -> virtual camera (and the microphone and tray beside
them), and for a broken one says what still works without it and how to fix it: one diagnosis per cause.

Every check is a small function returning a `Check`; its slow or machine-bound parts (the webcam prober, the
camera factory, the model loader) are keyword arguments, so tests can swap them for fakes.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import platform
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from fercam import driver_facts, linux_driver
from fercam.apps.tray.check import has_typelib, tray_verdict
from fercam.defaults import DEFAULT_DETECTOR
from fercam.devices import DRIVER_FIX, WEBCAM_INDICES, probe_webcams
from fercam.driver_facts import DriverFacts

MIN_PYTHON = (3, 10)
VCAM_FORMAT = {"width": 1280, "height": 720, "fps": 30}
VCAM_FIX = DRIVER_FIX
WEBCAM_FIX = {
    "Linux": "connect a webcam, close apps using it, allow access: sudo usermod -aG video $USER (then log in again)",
    "Windows": "connect a webcam and allow desktop apps in Settings > Privacy & security > Camera",
    "Darwin": "connect a webcam and allow FER Cam (or your terminal) in System Settings > Privacy & Security > Camera",
}
MODEL_FIX = "copy the trained model (training writes runs/<run>/model.tflite) to models/fer_cnn.tflite, then reinstall"
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


@dataclass(frozen=True)
class Check:
    """One verdict. A failed critical check means FER Cam cannot run at all; any other failed check names what
    still works without the part (`without`)."""

    name: str
    ok: bool
    detail: str
    fix: str = ""
    critical: bool = True
    without: str = ""

    def line(self) -> str:
        tag = "[ok]" if self.ok else "[FAIL]" if self.critical else "[warn]"
        text = f"{tag:<6} {self.name}: {self.detail}"
        if not self.ok and self.without:
            text += f"; without it: {self.without}"
        return text if self.ok or not self.fix else f"{text} -> fix: {self.fix}"


@dataclass(frozen=True)
class Requirement:
    """A Python package the app imports, and the distributions that may provide it."""

    label: str
    module: str
    dists: tuple[str, ...]
    below_major: int | None = None
    critical: bool = True


REQUIREMENTS = (
    Requirement("numpy", "numpy", ("numpy",)),
    Requirement("opencv", "cv2", ("opencv-python", "opencv-python-headless", "opencv-contrib-python"), below_major=5),
    Requirement("ai_edge_litert", "ai_edge_litert", ("ai-edge-litert",)),
    Requirement("pyvirtualcam", "pyvirtualcam", ("pyvirtualcam",)),
    Requirement("pystray", "pystray", ("pystray",), critical=False),
    Requirement("pillow", "PIL", ("pillow",)),
)


def _pip_fix(spec: str) -> str:
    """A frozen build cannot pip-install into itself: there the fix is a rebuild."""
    if getattr(sys, "frozen", False):
        return "rebuild FER Cam (installer/windows/fercam.spec) or reinstall it"
    return f'{sys.executable} -m pip install "{spec}"'


def package_version(req: Requirement) -> str | None:
    """Installed version without importing (pystray's import opens the display), else the module's __version__."""
    if importlib.util.find_spec(req.module) is None:
        return None
    for dist in req.dists:
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return str(getattr(importlib.import_module(req.module), "__version__", "unknown version"))


def check_python(version: Sequence[int] = sys.version_info) -> Check:
    found = ".".join(str(part) for part in version[:3])
    ok = tuple(version[:2]) >= MIN_PYTHON
    need = ".".join(map(str, MIN_PYTHON))
    return Check("python", ok, f"{found} (need >= {need})", f"install Python {need} or newer and reinstall FER Cam")


def check_package(req: Requirement, *, version_of: Callable[[Requirement], str | None] = package_version) -> Check:
    spec = f"{req.dists[0]}<{req.below_major}" if req.below_major else req.dists[0]
    try:
        version = version_of(req)
    except Exception as exc:  # a broken install can raise anything on import
        return Check(req.label, False, f"import {req.module} fails: {exc}", _pip_fix(spec), req.critical)
    if version is None:
        return Check(req.label, False, "not installed", _pip_fix(spec), req.critical)
    major = version.split(".")[0]
    if req.below_major is not None and major.isdigit() and int(major) >= req.below_major:
        return Check(req.label, False, f"{version} (need < {req.below_major})", _pip_fix(spec), req.critical)
    return Check(req.label, True, version, critical=req.critical)


def _load_classifier() -> Any:
    from fercam.emotion import load_classifier

    return load_classifier()


def check_model(*, loader: Callable[[], Any] = _load_classifier) -> Check:
    import numpy as np

    try:
        classifier = loader()
        probabilities = np.asarray(classifier.predict_faces(np.zeros((1, 48, 48), np.uint8)))
    except Exception as exc:
        return Check("emotion model", False, f"does not load: {exc}", MODEL_FIX)
    if probabilities.shape != (1, 7) or not np.all(np.isfinite(probabilities)):
        return Check("emotion model", False, f"predicts shape {probabilities.shape}, not (1, 7)", MODEL_FIX)
    return Check("emotion model", True, f"{getattr(classifier, 'path', 'loaded')} predicts 7 emotions")


def _load_second_opinion() -> tuple[Any, Any]:
    from fercam.combined import AlignedEmotionModel, Combiner

    return AlignedEmotionModel(), Combiner.load()


def check_combined_reading(*, loader: Callable[[], tuple[Any, Any]] = _load_second_opinion) -> Check:
    """The rest of the combined reading the app runs (`fercam.combined`): the zoo model and the combiner."""
    import numpy as np

    fix = (
        "reinstall FER Cam; in a checkout restore models/ (git checkout models/); "
        "python -m fercam.training.fit_combiner refits models/fer_combiner.json"
    )
    try:
        second, combiner = loader()
        ours = np.full((1, 7), 1 / 7, np.float32)
        # the second opinion as the app passes it: probabilities, then the features a rule may read
        second_opinion = np.hstack(second.read_aligned([np.zeros((112, 112, 3), np.uint8)]))
        probabilities = combiner.combine(ours, second_opinion)
    except Exception as exc:
        return Check("combined reading", False, f"does not load: {exc}", fix)
    if probabilities.shape != (1, 7) or not np.all(np.isfinite(probabilities)):
        return Check("combined reading", False, f"gives shape {probabilities.shape}, not (1, 7)", fix)
    return Check("combined reading", True, f"{getattr(second, 'path', 'zoo model')} and the combiner load")


def _load_mtcnn() -> Any:
    from fercam.detection import load_detector

    return load_detector(DEFAULT_DETECTOR)


def check_detector(*, loader: Callable[[], Any] = _load_mtcnn) -> Check:
    fix = "reinstall FER Cam; in a checkout regenerate models/mtcnn_*.tflite: python -m fercam.training.convert_mtcnn"
    try:
        detector = loader()
    except Exception as exc:  # ImportError while fercam.detection is missing, model errors otherwise
        return Check("face detector", False, f"{DEFAULT_DETECTOR} does not load: {type(exc).__name__}: {exc}", fix)
    return Check("face detector", True, f"{DEFAULT_DETECTOR} loaded ({type(detector).__name__})")


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
    fix = WEBCAM_FIX.get(system, WEBCAM_FIX["Linux"])
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
        reason = "; ".join(errors)
        if system != "Linux":
            fix = VCAM_FIX.get(system, VCAM_FIX["Linux"])
            return Check("virtual camera", False, f"cannot be created: {reason}", fix, False, WITHOUT_VCAM)
        verdict = diagnose()
        if not verdict.ready:
            detail = "cannot be created: the v4l2loopback driver is not ready (why and the fix: video devices above)"
            return Check("virtual camera", False, detail, critical=False, without=WITHOUT_VCAM)
        return Check(
            "virtual camera", False, f"cannot be created: {reason}", linux_driver_fix(verdict), False, WITHOUT_VCAM
        )
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
        fix = _pip_fix("sounddevice")
        return Check("microphone", False, "sounddevice is not installed", fix, False, WITHOUT_MICROPHONE)
    except OSError as exc:  # the package is there but its PortAudio library is not
        fix = PORTAUDIO_FIX.get(system, PORTAUDIO_FIX["Linux"])
        detail = f"the PortAudio library does not load ({exc})"
        return Check("microphone", False, detail, fix, False, WITHOUT_MICROPHONE)
    except Exception as exc:  # sounddevice.PortAudioError or ValueError: no input device
        fix = MICROPHONE_FIX.get(system, MICROPHONE_FIX["Linux"])
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
