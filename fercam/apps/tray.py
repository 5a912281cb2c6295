"""The tray icon and its menu, over the settings store.

Item labels carry their state ("Boxes: on") because some Linux trays draw no checkmarks.
pystray owns the main thread (macOS requires it); the video runs in the App's threads.
"""

from __future__ import annotations

import logging

import cv2
from PIL import Image

from fercam.apps.app import App
from fercam.emoji import render_emoji
from fercam.settings import SettingsStore
from fercam.types import Emotion

log = logging.getLogger(__name__)

TOGGLES = (
    ("Boxes", "show_boxes"),
    ("Labels", "show_labels"),
    ("Emoji", "show_emoji"),
    ("Probabilities", "show_probs"),
    ("Voice", "voice"),
    ("Mirror", "mirror"),
)


def icon_image(size: int = 64) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(render_emoji(Emotion.HAPPY, size), cv2.COLOR_BGRA2RGBA))


class Tray:
    """Menu actions as plain methods, so tests can call them without a real tray."""

    def __init__(
        self,
        app: App,
        store: SettingsStore,
        *,
        cameras: list[int] | None = None,
        detectors: tuple[str, ...] = ("mtcnn", "haar"),
    ) -> None:
        self.app, self.store = app, store
        self.cameras = cameras if cameras is not None else [0]
        self.detectors = detectors
        self.last_message = ""
        self.icon = None

    # -- actions ------------------------------------------------------------------
    def toggle(self, key: str) -> None:
        self.store.update(**{key: not getattr(self.store.get(), key)})
        self._refresh()

    def set_camera(self, index: int) -> None:
        if self.store.get().camera != str(index):
            self.store.update(camera=str(index))
            self.app.restart()
        self._refresh()

    def set_detector(self, name: str) -> None:
        self.store.update(detector=name)  # the inference thread reloads on its next frame
        self._refresh()

    def open_preview(self) -> None:
        self.app.sink_spec = "window" if self.app.sink_spec == "window" else "virtualcam+window"
        self.app.restart()

    def quit(self) -> None:
        self.app.stop()
        if self.icon is not None:
            self.icon.stop()

    def notify(self, message: str) -> None:
        """Errors reach the user: as a desktop notification if the tray can, always in the status line."""
        self.last_message = message
        log.warning("%s", message)
        if self.icon is not None and getattr(self.icon, "HAS_NOTIFICATION", False):
            self.icon.notify(message, "FER Cam")
        self._refresh()

    # -- labels -------------------------------------------------------------------
    def status_text(self) -> str:
        status = self.app.status_line()
        return f"FER Cam: {status}" + (f" | {self.last_message[:60]}" if self.last_message else "")

    def toggle_label(self, title: str, key: str) -> str:
        return f"{title}: {'on' if getattr(self.store.get(), key) else 'off'}"

    def pause_label(self) -> str:
        return "Overlays: paused (pass-through)" if self.store.get().paused else "Overlays: shown"

    # -- pystray ------------------------------------------------------------------
    def menu(self):
        import pystray

        def act(fn, *args):  # pystray passes (icon, item) to two-argument callables: take none
            return lambda: fn(*args)

        def is_set(key, value=True):
            return lambda _item: getattr(self.store.get(), key) == value

        item = pystray.MenuItem
        toggles = [
            item(lambda _item, t=title, k=key: self.toggle_label(t, k), act(self.toggle, key), checked=is_set(key))
            for title, key in TOGGLES
        ]
        cameras = [
            item(f"Camera {i}", act(self.set_camera, i), checked=is_set("camera", str(i)), radio=True)
            for i in self.cameras
        ]
        detectors = [
            item(name, act(self.set_detector, name), checked=is_set("detector", name), radio=True)
            for name in self.detectors
        ]
        return pystray.Menu(
            item(lambda _item: self.status_text(), None, enabled=False),
            *toggles,
            item(lambda _item: self.pause_label(), act(self.toggle, "paused"), checked=is_set("paused")),
            item(lambda _item: f"Camera: {self.store.get().camera}", pystray.Menu(*cameras)),
            item(lambda _item: f"Detector: {self.store.get().detector}", pystray.Menu(*detectors)),
            item("Open preview", act(self.open_preview)),
            item("Quit", act(self.quit)),
        )

    def _refresh(self) -> None:
        if self.icon is not None:
            self.icon.update_menu()

    def run(self) -> None:
        """Show the icon and block until Quit (pystray's loop)."""
        import pystray

        self.icon = pystray.Icon("fercam", icon_image(), "FER Cam", menu=self.menu())
        self.app.notify = self.notify
        self.icon.run(setup=self._setup)

    def _setup(self, icon) -> None:
        icon.visible = True
        self.app.start()
