"""Starting the window beside a running App: for the tray, for `fercam window` and for `run --serve`."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from fercam.apps.app import App
from fercam.apps.window.access import LinkFile, launch_code
from fercam.apps.window.controls import Controls
from fercam.apps.window.server import DEFAULT_PORT, WindowServer
from fercam.settings import default_settings_path


def link_path() -> Path:
    """Beside settings.json, so the link lives as long as the user's settings."""
    return default_settings_path().parent / "window.json"


def detector_choices() -> dict[str, str | None]:
    from fercam.detection import DETECTORS

    return {name: DETECTORS.why_unavailable(name) for name in DETECTORS.names()}


def start_window(app: App, *, quit: Callable[[], None], cameras: list[int], port: int = DEFAULT_PORT) -> WindowServer:
    """The window's server, started; the caller prints `server.url` (OSError if it cannot bind)."""
    from fercam.apps.app import microphone_problem

    voice = microphone_problem()
    controls = Controls(
        app,
        cameras=[str(i) for i in cameras],
        detectors=detector_choices(),
        unavailable={"voice": voice} if voice else {},
    )
    server = WindowServer(controls, token_path=link_path(), quit=quit, port=port)
    server.start()
    return server


def running_window_url() -> str | None:
    """A one-time launch link (no token: it goes on a browser's command line) to the FER Cam window already
    served for this user: the process that saved the link is alive and its port takes connections (no request
    is made: nothing here talks HTTP as a client). Whoever else holds that port gets a code that opens nothing."""
    link = LinkFile(link_path())
    if not (link.port and link.pid and link.value and _alive(link.pid)):
        return None
    try:
        socket.create_connection(("127.0.0.1", link.port), timeout=2).close()
    except OSError:
        return None
    return f"http://127.0.0.1:{link.port}/launch/{launch_code(link.value)}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists (and is ours)
    except OSError:
        return False
    return True


def serve_until_quit(app: App, server: WindowServer, done: threading.Event) -> int:
    """Runs the App until the page's Quit, Ctrl-C or SIGTERM (both raise here: `fercam.apps.stopping`);
    stops the video first so files are finished."""
    app.start()
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        app.stop()
        server.stop()
    return 0
