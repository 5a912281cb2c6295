"""The tray icon and its menu, over the settings store.

Item labels carry their state ("Boxes: on") because some Linux trays draw no checkmarks.
pystray owns the main thread (macOS requires it); the video runs in the App's threads and
the FER Cam window (a local web page) is the preview: no OpenCV window in tray mode.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import webbrowser
from collections.abc import Callable

import cv2
from PIL import Image

from fercam.apps.app import App
from fercam.emoji import render_emoji
from fercam.settings import CHOICES, SettingsStore
from fercam.types import Emotion

log = logging.getLogger(__name__)

TOGGLES = (
    ("Boxes", "show_boxes"),
    ("Labels", "show_labels"),
    ("Emoji", "show_emoji"),
    ("Probabilities", "show_probs"),
    ("Voice", "voice"),
    ("Mirror", "mirror"),
    ("Body cues", "body_cues"),
)
MENU_NOTICE_CHARS = 70  # longer notices are cut in the menu; the window and the notification show them whole
REFRESH_S = 1.0
STUCK_AFTER_S = 5.0
TRAY_FIX = "start FER Cam from your desktop session, or use the window without a tray: fercam window"


def icon_image(size: int = 64) -> Image.Image:
    return Image.fromarray(cv2.cvtColor(render_emoji(Emotion.HAPPY, size), cv2.COLOR_BGRA2RGBA))


def open_page(url: str) -> None:
    """The user's browser on `url`, off the calling thread (some browsers block their launcher)."""
    threading.Thread(target=webbrowser.open, args=(url,), name="fercam-browser", daemon=True).start()


def listen_for_clicks(icon) -> None:
    """pystray's xorg icon never asks X for button presses (0.19.5), so its click did nothing: ask for them.

    With that backend there is no menu, and the click is how the user reaches the window.
    """
    if not type(icon).__module__.endswith("._xorg"):
        return
    from Xlib import X

    icon._window.change_attributes(event_mask=X.ExposureMask | X.StructureNotifyMask | X.ButtonPressMask)
    icon._display.flush()


class Tray:
    """Menu actions as plain methods, so tests can call them without a real tray."""

    def __init__(
        self,
        app: App,
        store: SettingsStore,
        *,
        cameras: list[int] | None = None,
        detectors: dict[str, str | None] | None = None,
        window_link: Callable[[], str] | None = None,
        voice_problem: str | None = None,
    ) -> None:
        self.app, self.store = app, store
        self.cameras = cameras if cameras is not None else [0]
        self.detectors = detectors if detectors is not None else {"mtcnn": None, "yunet": None}
        self.window_link = window_link  # () -> a one-time link to the window (never the token: see window.access)
        self.voice_problem = voice_problem  # why Voice cannot work here, if it cannot
        self.last_message = ""
        self.icon = None
        self._stopped = threading.Event()
        self._loop_ended = threading.Event()
        self.on_stuck: Callable[[], None] = lambda: None  # last words before a forced exit (stop the server)

    # -- actions ------------------------------------------------------------------
    def toggle(self, key: str) -> None:
        self._change({key: not getattr(self.store.get(), key)})

    def set_camera(self, index: int) -> None:
        self._change({"camera": str(index)})  # a webcam chosen here replaces a --source file

    def set_detector(self, name: str) -> None:
        self._change({"detector": name})  # the inference thread reloads on its next frame

    def _change(self, changes: dict) -> None:
        try:
            self.app.apply(changes)  # the engine's one way to change settings, shared with the window
        except ValueError as exc:
            self.app.report(str(exc))
        self._refresh()

    def set_unsure_faces(self, choice: str) -> None:
        self._change({"unsure_faces": choice})  # "label" or "unsure" (Settings.unsure_faces)

    def open_window(self) -> None:
        if self.window_link:
            open_page(self.window_link())

    def quit(self) -> None:
        self._stopped.set()
        self.app.stop()
        if self.icon is not None:
            self.icon.stop()
            threading.Thread(target=self._exit_if_stuck, name="fercam-exit", daemon=True).start()

    def _exit_if_stuck(self) -> None:
        """pystray's xorg loop sometimes misses the end of its own window and waits forever; the video is
        already stopped and its files finished by now, so end the process rather than hang after Quit."""
        if not self._loop_ended.wait(STUCK_AFTER_S):
            log.warning("the tray's loop did not end after Quit; exiting")
            self.on_stuck()
            os._exit(0)

    def notify(self, message: str) -> None:
        """Errors reach the user: whole as a desktop notification (if the tray can) and in the window."""
        self.last_message = message
        log.warning("%s", message)
        if self.icon is not None and self.icon.HAS_NOTIFICATION:
            try:
                self.icon.notify(message, "FER Cam")
            except Exception as exc:  # e.g. GTK without a D-Bus session: the window still shows the notice
                log.info("no desktop notification: %s", exc)
        self._refresh()

    # -- labels -------------------------------------------------------------------
    def status_text(self) -> str:
        status = f"FER Cam: {self.app.status_line()}"
        if not self.last_message:
            return status
        notice = self.last_message
        if len(notice) > MENU_NOTICE_CHARS:
            notice = notice[:MENU_NOTICE_CHARS] + "... (whole text in the window)"
        return f"{status} | {notice}"

    def toggle_label(self, title: str, key: str) -> str:
        return f"{title}: {'on' if getattr(self.store.get(), key) else 'off'}"

    def camera_label(self) -> str:
        return f"Camera: {self.app.source_spec or self.store.get().camera}"

    def is_camera(self, index: int) -> bool:
        return self.app.source_spec is None and self.store.get().camera == str(index)

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
            if key != "voice" or not self.voice_problem
        ]
        if self.voice_problem:
            toggles.insert(4, item(f"Voice: off ({self.voice_problem})", None, enabled=False))
        cameras = [
            item(f"Camera {i}", act(self.set_camera, i), checked=lambda _item, i=i: self.is_camera(i), radio=True)
            for i in self.cameras
        ] or [item("No webcam found", None, enabled=False)]
        detectors = [
            item(
                name if why is None else f"{name} ({why})",
                act(self.set_detector, name),
                checked=is_set("detector", name),
                radio=True,
                enabled=why is None,
            )
            for name, why in self.detectors.items()
        ]
        unsure = [
            item(choice, act(self.set_unsure_faces, choice), checked=is_set("unsure_faces", choice), radio=True)
            for choice in CHOICES["unsure_faces"]
        ]
        return pystray.Menu(
            item(lambda _item: self.status_text(), None, enabled=False),
            item("Open FER Cam window", act(self.open_window), default=True),  # a click on menu-less trays
            *toggles,
            item(lambda _item: f"Show unsure faces as: {self.store.get().unsure_faces}", pystray.Menu(*unsure)),
            item("Pause overlays", act(self.toggle, "paused"), checked=is_set("paused")),
            item(lambda _item: self.camera_label(), pystray.Menu(*cameras)),
            item(lambda _item: f"Detector: {self.store.get().detector}", pystray.Menu(*detectors)),
            item("Quit", act(self.quit)),
        )

    def _refresh(self) -> None:
        if self.icon is not None:
            # The tooltip: X11 window names are Latin-1, so keep it ASCII.
            self.icon.title = f"FER Cam: {self.app.status_line()}"[:120].encode("ascii", "replace").decode()
            self.icon.update_menu()

    def _refresh_every_second(self) -> None:
        while not self._stopped.wait(REFRESH_S):
            self._refresh()

    def run(self) -> None:
        """Show the icon and block until Quit (pystray's loop)."""
        import pystray

        self.icon = pystray.Icon("fercam", icon_image(), "FER Cam", menu=self.menu())
        self.app.notify = self.notify
        for signum in (signal.SIGINT, signal.SIGTERM):  # Ctrl-C ends like Quit: files finished, exit 0
            signal.signal(signum, self._quit_on_signal)
        try:
            self.icon.run(setup=self._setup)
            self._loop_ended.set()
        except Exception as exc:  # e.g. the GTK backends without a D-Bus session or notification service
            if self._stopped.is_set():
                log.info("the tray's own cleanup failed after Quit: %s", exc)
                return
            self._stopped.set()
            self.icon._mark_ready()  # releases pystray's setup thread, which would otherwise keep us alive
            raise RuntimeError(f"the tray icon could not start ({exc}); {TRAY_FIX}") from exc

    def _quit_on_signal(self, _signum, _frame) -> None:
        threading.Thread(target=self.quit, name="fercam-quit", daemon=True).start()  # not inside the tray's loop

    def _setup(self, icon) -> None:
        if self._stopped.is_set():
            return
        icon.visible = True
        listen_for_clicks(icon)
        self.app.start()
        threading.Thread(target=self._refresh_every_second, name="fercam-tray-status", daemon=True).start()
