"""User settings: a frozen value, its schema, and a thread-safe store that persists it per user.

A settings file is never dropped in silence: values that break the schema (a wrong type, a
number out of range, an unknown key) are reported by name, the valid rest is kept, and the file
is backed up under a timestamped name before anything rewrites it.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from fercam.defaults import DEFAULT_DETECTOR
from fercam.errors import one_line
from fercam.files import create_private, write_atomic

log = logging.getLogger(__name__)

MAX_FILE_BYTES = 64 * 1024  # a settings file is a few hundred bytes; anything huge is not ours


@dataclass(frozen=True)
class Settings:
    """Everything the tray menu and the window can change; the defaults are what a new user sees."""

    show_boxes: bool = True
    show_labels: bool = True
    show_emoji: bool = True
    show_probs: bool = False
    paused: bool = False  # pass-through: the video goes out without overlays
    mirror: bool = False  # flip the output picture (call apps mirror only the self-view themselves)
    voice: bool = False  # read emotion from the microphone too
    body_cues: bool = False  # a strip of body-language cues under each face (arms crossed, nodding, ...)
    unsure_faces: str = "unsure"  # a face the reading is unsure of shows as "unsure", or as its top "label"
    camera: str = "0"
    detector: str = DEFAULT_DETECTOR
    width: int = 1280
    height: int = 720
    fps: int = 30

    def replace(self, **changes) -> Settings:
        return dataclasses.replace(self, **changes)

    def checked(self, changes: dict) -> Settings:
        """These settings with `changes`, or ValueError naming the first value that breaks the schema."""
        for key, value in changes.items():
            problem = setting_problem(key, value)
            if problem:
                raise ValueError(problem)
        return self.replace(**changes)

    @classmethod
    def from_dict(cls, data: dict) -> tuple[Settings, list[str]]:
        """The valid values of `data` over the defaults, and one problem per value that was not taken."""
        kept, problems = {}, []
        for key, value in data.items():
            problem = setting_problem(key, value)
            if problem:
                problems.append(problem)
            else:
                kept[key] = value
        return cls(**kept), problems


RANGES = {"width": (16, 7680), "height": (16, 4320), "fps": (1, 240)}
# The stream URLs the camera setting may name: network cameras' own protocols. The command line's --source
# also takes tcp:// and udp://; a setting, which the window can change, never reaches raw sockets or FFmpeg's
# other protocols (file:, concat:, subfile:, ...). A subset of fercam.source_specs.STREAM_SCHEMES.
CAMERA_SCHEMES = ("rtsp", "rtmp", "http", "https")
CAMERA_HELP = (
    f"a webcam number, a video file, a photo, a folder of photos or a stream URL "
    f"({', '.join(f'{s}://' for s in CAMERA_SCHEMES)})"
)
MAX_CAMERA_CHARS = 1024  # a path or URL a person types; PATH_MAX-long texts are not cameras
MAX_NAME_BYTES = 255  # one file-name part, on every file system FER Cam runs on
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: "C:\clip.mp4" has a drive, not a scheme
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DETECTOR = re.compile(r"[a-z0-9_-]{1,32}")
_DEFAULTS = dataclasses.asdict(Settings())
_KINDS = {bool: "a bool", int: "an int", str: "a text"}
CHOICES = {"unsure_faces": ("label", "unsure")}  # settings that name one of a few ways


def setting_problem(key: str, value: object) -> str | None:
    """What is wrong with `value` for the setting `key`, from the value alone (nothing is opened), or None."""
    if key not in _DEFAULTS:
        return f"unknown setting {key!r}"
    expected = type(_DEFAULTS[key])
    if type(value) is not expected:  # exact: True is not an int here, "60" is not 60
        return f"{key} must be {_KINDS[expected]}, not {json.dumps(value)[:40]}"
    if key in RANGES and not RANGES[key][0] <= value <= RANGES[key][1]:
        return f"{key} must be from {RANGES[key][0]} to {RANGES[key][1]}, not {value}"
    if key in CHOICES and value not in CHOICES[key]:
        return f"{key} must be one of {', '.join(CHOICES[key])}, not {json.dumps(value)[:40]}"
    if key == "camera":
        return camera_problem(value)
    if key == "detector" and not _DETECTOR.fullmatch(value):
        return "detector must be a detector's name (lower-case letters, digits, - and _)"
    return None


def camera_problem(text: str) -> str | None:
    """Why `text` cannot be the camera setting, judged from the text alone: a webcam number, a path, or a
    stream URL of a scheme in CAMERA_SCHEMES (whether the file exists is for whoever opens it)."""
    if not text.strip() or len(text) > MAX_CAMERA_CHARS:
        return f"camera must be {CAMERA_HELP}, of 1 to {MAX_CAMERA_CHARS} characters"
    if _CONTROL.search(text):
        return "camera must not contain control characters"
    if text.isascii() and text.isdigit():
        return None if int(text) < 100 else "camera: webcam numbers go from 0 to 99"
    scheme = _SCHEME.match(text)
    if scheme:
        if scheme.group(1).lower() not in CAMERA_SCHEMES:
            return f"camera: {scheme.group(1)}: is not accepted; it must be {CAMERA_HELP}"
        try:
            host = urlsplit(text).hostname
        except ValueError:
            host = None
        return None if host else "camera: the stream URL names no host"
    if any(len(part.encode("utf-8", "replace")) > MAX_NAME_BYTES for part in re.split(r"[\\/]", text)):
        return f"camera: a file or folder name is longer than {MAX_NAME_BYTES} bytes"
    return None


def default_settings_path() -> Path:
    override = os.environ.get("FERCAM_CONFIG_DIR")
    if override:
        return Path(override) / "settings.json"
    from platformdirs import user_config_dir

    return Path(user_config_dir("fercam", appauthor=False)) / "settings.json"


def backup(path: Path) -> Path:
    """A copy of `path` under a new timestamped name; earlier backups are never overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        target = path.with_name(f"{path.name}.{stamp}{f'-{n}' if n else ''}.bak")
        try:
            create_private(target, path.read_bytes())  # fails instead of replacing a backup (or following a link)
            return target
        except FileExistsError:
            continue
    raise OSError(f"too many backups of {path}")


class SettingsStore:
    """Holds the current Settings; `update` saves atomically and tells every subscriber."""

    def __init__(self, path: Path | None = None, *, initial: Settings | None = None) -> None:
        self.path = path
        self.problems: list[str] = []  # what was wrong with the file at load, for the tray and the window
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
        self._make_private()
        try:
            settings, self.problems = Settings.from_dict(self._read())
        except Exception as exc:  # any parse failure at all: too big, not JSON, too deep, not an object
            reason = one_line(exc)[:80]
            settings, self.problems = Settings(), [f"unreadable ({reason})"]
        if self.problems:
            kept = backup(self.path)
            log.warning("settings file %s: %s; kept a copy as %s", self.path, "; ".join(self.problems), kept.name)
        return settings

    def _make_private(self) -> None:
        """The file and its backups as older versions left them (0644) become readable by the user only."""
        for path in (self.path, *self.path.parent.glob(f"{self.path.name}.*.bak")):
            try:
                if not path.is_symlink() and path.stat().st_mode & 0o077:
                    path.chmod(0o600)
            except OSError as exc:
                log.warning("could not make %s private: %s", path, exc)

    def _read(self) -> dict:
        if self.path.stat().st_size > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES // 1024} KB")
        data = json.loads(self.path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        return data

    def _save(self, settings: Settings) -> None:
        if self.path is None:
            return
        try:
            write_atomic(self.path, json.dumps(dataclasses.asdict(settings), indent=2))  # 0600: URLs hold passwords
        except OSError as exc:
            log.warning("could not save settings to %s: %s", self.path, exc)
