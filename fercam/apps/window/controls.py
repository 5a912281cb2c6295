"""What the control page can read and change: the app's settings, status and notices."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from fercam.settings import CHOICES, Settings

RESTART_KEYS = frozenset({"camera", "width", "height", "fps"})  # the source and sink are opened with these
LIMITS = {"width": (64, 3840), "height": (64, 2160), "fps": (1, 60)}
FIELDS = {f.name for f in dataclasses.fields(Settings)}


class Controls:
    """Reads state for the page and applies its changes through the app's settings store."""

    def __init__(
        self, app, *, cameras: list[str], detectors: dict[str, str | None], unavailable: dict[str, str] | None = None
    ) -> None:
        self.app = app
        self.unavailable = unavailable or {}  # setting -> why it cannot be switched on here ("voice")
        self.cameras = cameras  # webcams found at start ("0", "1", ...)
        self.detectors = detectors  # name -> None if it works here, else why not

    def status(self) -> dict:
        runner = self.app.runner
        running = runner is not None and not runner.stopped
        stats = runner.stats if runner is not None else None
        return {
            "running": running,
            "fps": round(stats.fps, 1) if running else 0.0,
            "analysis_hz": round(stats.analysis_hz, 1) if running else 0.0,
            "faces": stats.faces if running else 0,
            "frames_sent": stats.frames_sent if stats else 0,
            "error": stats.error if stats else "",
            "notices": list(self.app.notices),
            "source": self.app.source_spec or self.app.store.get().camera,
            "settings": dataclasses.asdict(self.app.store.get()),  # the overlay page follows the toggles
        }

    def state(self) -> dict:
        return {
            "settings": dataclasses.asdict(self.app.store.get()),
            "cameras": self.cameras,
            "detectors": self.detectors,
            "unavailable": self.unavailable,
            "status": self.status(),
        }

    def validate(self, changes: dict) -> dict:
        """The changes as given, or ValueError with one line saying what is wrong."""
        defaults = Settings()
        for key, value in changes.items():
            if key not in FIELDS:
                raise ValueError(f"unknown setting {key!r}")
            kind = type(getattr(defaults, key))
            if type(value) is not kind:
                raise ValueError(f"{key} must be a {kind.__name__}, not {value!r}")
            if key in CHOICES and value not in CHOICES[key]:
                raise ValueError(f"{key} must be one of {', '.join(CHOICES[key])}")
            low, high = LIMITS.get(key, (value, value))
            if not low <= value <= high:
                raise ValueError(f"{key} must be between {low} and {high}")
        if "detector" in changes and self.detectors.get(changes["detector"], "unknown detector"):
            raise ValueError(f"detector {changes['detector']}: {self.detectors.get(changes['detector'], 'unknown')}")
        for key, why in self.unavailable.items():
            if changes.get(key) is True:
                raise ValueError(f"{key} cannot be switched on here: {why}")
        if "camera" in changes and not changes["camera"].strip():
            raise ValueError("camera must be a webcam number, a video file or a stream URL")
        return changes

    def change(self, changes: dict) -> Callable[[], None] | None:
        """Saves the changes at once; returns the restart to run (off the web thread) if the source must reopen."""
        self.app.store.update(**self.validate(changes))
        if not RESTART_KEYS & changes.keys():
            return None
        if "camera" in changes:
            self.app.source_spec = None  # the page's choice replaces the command line's --source
        return self.app.restart
