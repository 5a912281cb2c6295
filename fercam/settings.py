"""User settings: a frozen value plus a thread-safe store that persists it per user."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Settings:
    """Everything the tray menu can change; the defaults are what a new user sees."""

    show_boxes: bool = True
    show_labels: bool = True
    show_emoji: bool = True
    show_probs: bool = False
    paused: bool = False  # pass-through: the video goes out without overlays
    mirror: bool = False  # call apps mirror only the self-view, so the output is not mirrored
    voice: bool = False
    body_cues: bool = False  # a strip of body-language cues under each face (arms crossed, nodding, ...)
    camera: str = "0"
    detector: str = "mtcnn"
    width: int = 1280
    height: int = 720
    fps: int = 30

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: dict) -> Settings:
        """Known keys of the right type are taken; anything else keeps its default."""
        defaults = cls()
        kept = {
            f.name: data[f.name]
            for f in dataclasses.fields(cls)
            if f.name in data and type(data[f.name]) is type(getattr(defaults, f.name))
        }
        return cls(**kept)


def default_settings_path() -> Path:
    override = os.environ.get("FERCAM_CONFIG_DIR")
    if override:
        return Path(override) / "settings.json"
    from platformdirs import user_config_dir

    return Path(user_config_dir("fercam", appauthor=False)) / "settings.json"


class SettingsStore:
    """Holds the current Settings; `update` saves atomically and tells every subscriber."""

    def __init__(self, path: Path | None = None, *, initial: Settings | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._subscribers: list[Callable[[Settings], None]] = []
        self._settings = initial if initial is not None else self._load()

    def get(self) -> Settings:
        return self._settings

    def update(self, **changes) -> Settings:
        with self._lock:
            self._settings = self._settings.replace(**changes)
            settings = self._settings
            self._save(settings)
        for callback in list(self._subscribers):
            callback(settings)
        return settings

    def subscribe(self, callback: Callable[[Settings], None]) -> None:
        self._subscribers.append(callback)

    def _load(self) -> Settings:
        if self.path is None or not self.path.exists():
            return Settings()
        try:
            return Settings.from_dict(json.loads(self.path.read_text()))
        except (OSError, ValueError, TypeError) as exc:
            # Keep the unreadable file for the user instead of overwriting it on the next save.
            backup = self.path.with_suffix(".json.bad")
            os.replace(self.path, backup)
            log.warning("settings file %s is unreadable (%s); kept it as %s, using defaults", self.path, exc, backup)
            return Settings()

    def _save(self, settings: Settings) -> None:
        if self.path is None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(dataclasses.asdict(settings), indent=2))
            os.replace(tmp, self.path)  # atomic: a crash never leaves half a file
        except OSError as exc:
            log.warning("could not save settings to %s: %s", self.path, exc)
