"""`fercam doctor`'s checks of what FER Cam installs: Python, the packages it imports and the models it loads.

A failure here is critical (FER Cam cannot run at all), unlike the machine's devices (`doctor_devices`), which
FER Cam can run without. It also holds `Check`, the one verdict every doctor check returns, and `pip_fix`, the
fix for a missing package, which the devices' checks share.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fercam.defaults import DEFAULT_DETECTOR

MIN_PYTHON = (3, 10)
MODEL_FIX = "copy the trained model (training writes runs/<run>/model.tflite) to models/fer_cnn.tflite, then reinstall"


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


def pip_fix(spec: str) -> str:
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
        return Check(req.label, False, f"import {req.module} fails: {exc}", pip_fix(spec), req.critical)
    if version is None:
        return Check(req.label, False, "not installed", pip_fix(spec), req.critical)
    major = version.split(".")[0]
    if req.below_major is not None and major.isdigit() and int(major) >= req.below_major:
        return Check(req.label, False, f"{version} (need < {req.below_major})", pip_fix(spec), req.critical)
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
    from fercam.combined import Combiner
    from fercam.second_opinion import AlignedEmotionModel

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
