"""The window as a new user meets it without a webcam (issue 44): a real `fercam run --serve` on the default camera
of a machine that has none, and Debian's Chromium on its page."""

from __future__ import annotations

import json
import time
import urllib.parse

from test_window_attacks import browser_stub, token_of
from test_window_security import call, state, wait_until
from window_helpers import browser_page, start_fercam, stop

from fercam.sources import list_cameras


def test_no_webcam_opens_the_window_says_why_offers_none_and_charts_start_afresh(tmp_path, media_dir):
    assert list_cameras() == []  # this machine has no webcam: the saved default, camera 0, cannot open
    stub, opened = browser_stub(tmp_path)
    env = {"FERCAM_CONFIG_DIR": str(tmp_path / "config"), "BROWSER": str(stub)}
    args = ["run", "--no-tray", "--serve", "--port", "0", "--sink", f"file:{tmp_path / 'out.mp4'}"]
    proc, url = start_fercam(args, env, tmp_path / "fercam.log")
    try:
        port = urllib.parse.urlsplit(url).port
        served = {"port": port, "token": token_of(url), "own": f"http://127.0.0.1:{port}"}
        # The window opened by itself (on a one-time link), and says why there is no video.
        wait_until(lambda: opened.exists() and "/launch/" in opened.read_text(), 20, "the window did not open")
        now = state(served)
        assert now["cameras"] == [] and not now["status"]["running"]
        (notice,) = now["status"]["notices"]
        assert "0" in notice, notice
        with browser_page(url) as (_browser, page):
            page.wait_for_function("() => document.getElementById('notices').textContent.length > 0")
            options = page.eval_on_selector_all("#camera option", "os => os.map(o => [o.textContent, o.disabled])")
            assert options == [["No webcam found", True]]  # not "Camera 0"
            clips = [str(media_dir / "fer_woman2.mp4"), str(media_dir / "fer_test.mp4")]
            status, _headers, body = call(served, "/api/settings", method="POST", body={"camera": clips[0]})
            assert status == 200, body
            # The video plays: the stale notice is taken down, here and on the page.
            assert state(served)["status"]["notices"] == []
            page.wait_for_function("() => document.getElementById('notices').textContent === ''", timeout=10000)
            page.wait_for_function("() => Charts.faces() > 0", timeout=30000)
            time.sleep(1.5)  # a chart's worth of the first source
            changed_at = page.evaluate("Date.now()")
            assert page.evaluate("Charts.oldest()") < changed_at - 1000
            assert call(served, "/api/settings", method="POST", body={"camera": clips[1]})[0] == 200
            page.wait_for_function(
                f"() => document.getElementById('status').textContent.includes({json.dumps(clips[1])})"
            )
            page.wait_for_function("() => Charts.faces() > 0", timeout=30000)
            assert page.evaluate("Charts.oldest()") >= changed_at  # nothing carried over from the first source
    finally:
        stop(proc)
