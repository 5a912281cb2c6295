"""The real tray on a real X display: Xvfb, the openbox window manager and the tint2 panel with its tray.

`fercam run --source CLIP` starts as a user would. No virtual-camera driver is loaded on test machines, so
FER Cam must open its window (a `BROWSER` stub records the URL) instead of crashing. The icon is found
by its pixels in a screenshot of the screen, clicked with xdotool, and Quit must exit 0.
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import requires_system_packages
from window_helpers import start_fercam, stop

TINT2RC = """panel_items = TS
panel_size = 100% 40
panel_position = bottom center horizontal
systray_padding = 4 4 4
systray_icon_size = 32
"""
SCREEN = (1024, 600)
GI = Path("/usr/lib/python3/dist-packages/gi")


@pytest.fixture(scope="module")
def desktop(tmp_path_factory):
    requires_system_packages("xvfb", "openbox", "tint2", "xdotool", "imagemagick")
    folder = tmp_path_factory.mktemp("desktop")
    xvfb = subprocess.Popen(
        ["Xvfb", "-displayfd", "1", "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        text=True,
    )
    env = {"DISPLAY": f":{xvfb.stdout.readline().strip()}"}
    (folder / "tint2rc").write_text(TINT2RC)
    helpers = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for cmd in (["openbox"], ["tint2", "-c", str(folder / "tint2rc")])
    ]
    time.sleep(2)  # the panel claims the tray selection
    yield {"env": env, "folder": folder}
    for proc in [*helpers, xvfb]:
        proc.terminate()
        proc.wait(10)


def screenshot(desktop, name: str) -> np.ndarray:
    path = desktop["folder"] / f"{name}.png"
    subprocess.run(["import", "-window", "root", str(path)], env=desktop_env(desktop), check=True, timeout=20)
    print(f"screenshot: {path}")
    return cv2.imread(str(path))


def desktop_env(desktop) -> dict:
    import os

    return {**os.environ, **desktop["env"]}


def find_icon(desktop, name: str, timeout: float = 20) -> tuple[int, int]:
    """The centre of FER Cam's yellow emoji in the panel at the bottom of the screen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        panel = screenshot(desktop, name)[SCREEN[1] - 40 :]
        yellow = (panel[:, :, 2] > 200) & (panel[:, :, 1] > 150) & (panel[:, :, 0] < 120)
        if yellow.sum() > 100:
            ys, xs = np.nonzero(yellow)
            return int(xs.mean()), SCREEN[1] - 40 + int(ys.mean())
        time.sleep(1)
    raise AssertionError("no FER Cam icon in the tray")


def xdotool(desktop, *args: str) -> None:
    subprocess.run(["xdotool", *args], env=desktop_env(desktop), check=True, timeout=20)


def browser_stub(folder: Path) -> tuple[Path, Path]:
    opened = folder / "opened.txt"
    stub = folder / "browser.sh"
    stub.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    stub.chmod(0o755)
    return stub, opened


def wait_for_lines(path: Path, count: int, timeout: float = 15) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = path.read_text().split() if path.exists() else []
        if len(lines) >= count:
            return lines
        time.sleep(0.2)
    raise AssertionError(f"the browser was opened {len(lines)} times, not {count}")


def start_tray(desktop, media_dir, backend: str, name: str, *, env: dict | None = None, prefix=(), sink=None):
    folder = desktop["folder"] / name
    folder.mkdir()
    stub, opened = browser_stub(folder)
    env = {**desktop["env"], "PYSTRAY_BACKEND": backend, "BROWSER": str(stub), **(env or {})}
    env["FERCAM_CONFIG_DIR"] = str(folder / "config")
    args = ["run", "--port", "0", "--source", str(media_dir / "fer_woman2.mp4")]
    args += ["--sink", sink.format(folder=folder)] if sink else []  # default: the virtual camera
    proc, url = start_fercam(args, env, folder / "fercam.log", prefix=prefix)
    return proc, url, opened, folder


def recorded_frames(path: Path) -> int:
    """The frames a player reads from the recording (its fragments are on file as they close)."""
    video, count = cv2.VideoCapture(str(path)), 0
    while video.read()[0]:
        count += 1
    return count


def wait_for_recorded_frames(path: Path, count: int, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (frames := recorded_frames(path) if path.exists() else 0) >= count:
            return frames
        time.sleep(0.5)
    raise AssertionError(f"the recording holds {frames} frames after {timeout:.0f} s, not {count}")


def opens(lines: list[str], url: str) -> bool:
    """The browser was opened on a one-time launch link of the window at `url` (never on its token)."""
    origin = url.split("/?")[0]
    return len(lines) == 1 and lines[0].startswith(f"{origin}/launch/") and url.split("token=")[1] not in lines[0]


def quit_from_the_page(url: str) -> None:
    """What the window's Quit button sends (the page's own Origin, and the token of its link)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=10)
    origin = f"http://127.0.0.1:{parts.port}"
    conn.request("POST", f"/api/quit?{parts.query}", body=b"{}", headers={"Origin": origin})
    assert conn.getresponse().status == 200


@pytest.mark.parametrize("how", ["ctrl-c", "page-quit"])
def test_xorg_tray_click_opens_the_window_and_quit_ends_cleanly(desktop, media_dir, how):
    # Ctrl-C with a video file as the output (it must be finished); the window's Quit with no camera driver.
    sink = "file:{folder}/out.mp4" if how == "ctrl-c" else None
    proc, url, opened, folder = start_tray(desktop, media_dir, "xorg", f"xorg-{how}", sink=sink)
    try:
        if sink is None:
            assert opens(wait_for_lines(opened, 1), url)  # no camera driver here: the window opened by itself
        x, y = find_icon(desktop, f"xorg-tray-{how}")
        xdotool(desktop, "mousemove", str(x), str(y), "click", "1")
        assert opens(wait_for_lines(opened, 1 if sink else 2)[-1:], url)  # no menu on xorg: a click opens it
        if sink:  # Ctrl-C once a second is on file: a loaded machine may start the stream late
            before = wait_for_recorded_frames(folder / "out.mp4", 31)
            proc.send_signal(signal.SIGINT)
        else:
            quit_from_the_page(url)
        assert proc.wait(20) == 0
    finally:
        stop(proc)
    log = (folder / "fercam.log").read_text()
    assert "Traceback" not in log
    if sink:
        assert recorded_frames(folder / "out.mp4") >= before  # finished, and what was on file kept
    else:
        assert "no virtual camera available" in log


def gi_path(tmp: Path) -> Path:
    """A folder holding only Debian's PyGObject, as the Linux installer links it into the app's environment."""
    (tmp / "gi").symlink_to(GI)
    return tmp


@pytest.mark.parametrize("backend", ["gtk", "appindicator"])
def test_menu_tray_items_work_and_quit_exits_0(desktop, media_dir, tmp_path, backend):
    indicator = ["gir1.2-ayatanaappindicator3-0.1"] if backend == "appindicator" else []
    requires_system_packages("dbus", "python3-gi", "gir1.2-gtk-3.0", *indicator)
    env = {"PYTHONPATH": str(gi_path(tmp_path))}
    prefix = ("dbus-run-session", "--")
    proc, url, opened, folder = start_tray(desktop, media_dir, backend, backend, env=env, prefix=prefix)
    try:
        wait_for_lines(opened, 1)
        x, y = find_icon(desktop, f"{backend}-tray")  # AppIndicator without a StatusNotifier host: an X11 icon

        def menu(*keys: str) -> None:
            xdotool(desktop, "mousemove", str(x), str(y), "click", "3")
            time.sleep(1.0)
            xdotool(desktop, "key", "--delay", "150", *keys)

        menu("Down", "Down")  # keyboard focus skips the status line: "Open FER Cam window", "Boxes: on"
        screenshot(desktop, f"{backend}-menu")
        xdotool(desktop, "key", "Return")
        time.sleep(1.0)
        settings = json.loads((folder / "config" / "settings.json").read_text())
        assert settings["show_boxes"] is False
        menu("Down", "Return")  # "Open FER Cam window"
        assert opens(wait_for_lines(opened, 2)[-1:], url)
        menu("Up", "Return")  # the last item: Quit
        assert proc.wait(20) == 0
    finally:
        stop(proc)
    assert "Traceback" not in (folder / "fercam.log").read_text()


def run_preview_window(desktop, media_dir, name: str):
    folder = desktop["folder"] / name
    folder.mkdir()
    env = {**desktop_env(desktop), "FERCAM_CONFIG_DIR": str(folder / "config")}
    args = ["run", "--no-tray", "--source", str(media_dir / "fer_woman2.mp4"), "--sink", "window"]
    log = open(folder / "fercam.log", "w")
    proc = subprocess.Popen([sys.executable, "-m", "fercam", *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = subprocess.run(
            ["xdotool", "search", "--onlyvisible", "--name", "FER Cam preview"], env=env, capture_output=True, text=True
        ).stdout.split()
        if found:
            return proc, found[0], folder
        time.sleep(0.3)
    proc.kill()
    raise AssertionError("no preview window appeared")


@pytest.mark.parametrize("how", ["close-button", "q"])
def test_no_tray_preview_window_opens_at_the_output_size_and_closes_with_exit_0(desktop, media_dir, how):
    proc, window, folder = run_preview_window(desktop, media_dir, f"window-{how}")
    try:
        time.sleep(2)  # frames flowing
        shot = screenshot(desktop, f"window-{how}")
        geometry = subprocess.run(
            ["xdotool", "getwindowgeometry", window], env=desktop_env(desktop), capture_output=True, text=True
        ).stdout
        scale = min(1.0, 0.9 * SCREEN[0] / 1280, 0.9 * SCREEN[1] / 720)  # the 1280x720 output, fitted to the screen
        assert f"Geometry: {round(1280 * scale)}x{round(720 * scale)}" in geometry  # and no toolbar below it
        assert shot.std() > 20  # the video is drawn, not a black window
        keys = ["alt+F4"] if how == "close-button" else ["q"]  # openbox closes like the title bar's X
        xdotool(desktop, "windowactivate", "--sync", window, "key", *keys)
        assert proc.wait(20) == 0
    finally:
        stop(proc)
    log = (folder / "fercam.log").read_text()
    assert "error" not in log.lower(), log
