"""What the control page can read and change: the app's settings, status and notices."""

from __future__ import annotations

import dataclasses

from fercam.settings import setting_problem

LIMITS = {"width": (64, 3840), "height": (64, 2160), "fps": (1, 60)}  # what the page offers, within the schema's


class Controls:
    """Reads state for the page and hands its changes to the app, which applies them one at a time."""

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
        """The changes as given, or ValueError with one line saying what is wrong (nothing is opened here)."""
        for key, value in changes.items():
            low, high = LIMITS.get(key, (None, None))
            if low is not None and type(value) is int and not low <= value <= high:
                raise ValueError(f"{key} must be between {low} and {high}")
            problem = setting_problem(key, value)  # the settings file's own rules: types, lengths, characters
            if problem:
                raise ValueError(problem)
        if "detector" in changes and self.detectors.get(changes["detector"], "unknown detector"):
            raise ValueError(f"detector {changes['detector']}: {self.detectors.get(changes['detector'], 'unknown')}")
        for key, why in self.unavailable.items():
            if changes.get(key) is True:
                raise ValueError(f"{key} cannot be switched on here: {why}")
        return changes

    def change(self, changes: dict) -> None:
        """Checks, applies and saves the changes, reopening the source and output if they need it (which may
        take seconds: call it off the web thread); ValueError if they are refused or fail."""
        self.app.apply(self.validate(changes))
