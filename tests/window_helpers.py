"""Starting `fercam` as a user would and driving Debian's Chromium with Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import requires_system_packages

CHROMIUM = "/usr/bin/chromium"
# As the machine notes say: without the networking flags Chromium keeps dialling out on a closed network.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
URL_LINE = re.compile(r"FER Cam window: (http://127\.0\.0\.1:(\d+)/\?token=(\S+))")


def need_chromium() -> None:
    requires_system_packages("chromium")
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (no browser download needed)")


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@contextmanager
def browser_page(url: str):
    """Chromium with one 1280x900 page open at `url`; yields (browser, page) for tests that open more pages."""
    need_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_browser(playwright)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(url)
        try:
            yield browser, page
        finally:
            browser.close()


def start_fercam(args: list[str], env: dict[str, str], log: Path, *, prefix=()) -> tuple[subprocess.Popen, str]:
    """`python -m fercam ARGS` in the background, its output in `log`; returns it and the window URL it printed."""
    command = [*prefix, sys.executable, "-m", "fercam", *args]
    with open(log, "w") as out:  # a file, not a pipe: a chatty child must never block on a full pipe
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        match = URL_LINE.search(log.read_text())
        if match:
            return proc, match.group(1)
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"fercam printed no window URL: {log.read_text()[-2000:]}")


def serve(source: Path, folder: Path, *, port: int = 0, prefix=()) -> tuple[subprocess.Popen, str]:
    """`fercam run --serve` of `source`, recording into folder/out.mp4, with settings of its own in `folder`."""
    args = ["run", "--no-tray", "--serve", "--port", str(port), "--source", str(source)]
    args += ["--sink", f"file:{folder / 'out.mp4'}"]
    env = {"FERCAM_CONFIG_DIR": str(folder / "config")}
    return start_fercam(args, env, folder / "fercam.log", prefix=prefix)


def stop(proc: subprocess.Popen, timeout: float = 20) -> int:
    if proc.poll() is None:
        proc.terminate()
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise


def canvas_image(page, canvas: str = "preview"):
    """The picture a canvas of the page shows, as a BGR array."""
    import base64

    import cv2
    import numpy as np

    data_url = page.evaluate(f"document.getElementById('{canvas}').toDataURL('image/png')")
    png = np.frombuffer(base64.b64decode(data_url.split(",", 1)[1]), np.uint8)
    return cv2.imdecode(png, cv2.IMREAD_COLOR)
