"""The window's web server: aiohttp on 127.0.0.1 in a thread of its own, beside the video threads."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import cv2
from aiohttp import WSCloseCode, web

from fercam.apps.window.access import Guard, Launches, LinkFile, launch_code, peer_uid
from fercam.apps.window.connections import BODY_S, IDLE_S, guard, quiet_loop_errors
from fercam.apps.window.controls import Controls
from fercam.apps.window.feeds import MAX_SOCKETS, Feeds
from fercam.defaults import DEFAULT_PORT
from fercam.emoji import render_emoji
from fercam.errors import one_line
from fercam.types import Emotion

log = logging.getLogger(__name__)

PAGES = {"/": "control.html", "/overlay": "overlay.html"}
ASSETS = ("common.js", "charts.js", "control.js", "control.css", "overlay.js", "overlay.css")  # /static/NAME
KINDS = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
MAX_BODY = 16 * 1024  # a change of settings is a few hundred bytes
MAX_JSON_DEPTH = 2  # settings are one flat object; a nested value gets the schema's own message
APPLY_WAIT_S = 2.0  # a change that takes longer (a stream URL opening) answers 202 and ends in a notice
MAX_WAITING_CHANGES = 8


def packaged_files() -> dict[str, bytes]:
    """The pages and their scripts, read once from the package: no request path ever reaches the file system."""
    folder = files("fercam.apps.window") / "static"
    return {name: (folder / name).read_bytes() for name in (*PAGES.values(), *ASSETS)}


_TOKENS = re.compile(r'[\[\]{}"\\]')  # all that matters to the depth: brackets, quotes and escapes


def load_json(text: str, max_depth: int = MAX_JSON_DEPTH):
    """json.loads, refusing nesting deeper than `max_depth` before Python's parser recurses into it.
    One pass over the text (a string of escaped quotes made the old check quadratic)."""
    depth = deepest = 0
    in_string, covered = False, -1
    for match in _TOKENS.finditer(text):
        char, at = match.group(), match.start()
        if at == covered:  # the character after a backslash in a string: its escape covers it
            continue
        if in_string:
            if char == "\\":
                covered = at + 1
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    if deepest > max_depth:
        raise ValueError(f"JSON nested deeper than {max_depth} levels: send one object of settings")
    return json.loads(text)


class WindowServer:
    """Serves the control page, the overlay page, their sockets and a small JSON API."""

    def __init__(
        self, controls: Controls, *, token_path: Path, quit: Callable[[], None], port: int = DEFAULT_PORT
    ) -> None:
        self.controls, self.quit, self.port = controls, quit, port
        self.token = LinkFile(token_path)
        self.guard = Guard(self.token, public=("/static/", "/emoji/", "/favicon.ico", "/launch/"))
        self.launches = Launches(self.token)
        self.feeds = Feeds(controls.app, controls.status, self.guard)
        self.files = packaged_files()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        # Changes of settings wait here in turn, on a thread of their own: a slow one never holds the sockets' pool.
        self._changes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="fercam-settings")
        self._waiting = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.guard.port}/?token={self.token.value}"

    @property
    def overlay_url(self) -> str:
        return f"http://127.0.0.1:{self.guard.port}/overlay?token={self.token.overlay}"

    def launch_url(self) -> str:
        """A link that opens the control page once, for a browser's command line (which any local user can read):
        it holds a one-time code, never the token."""
        return f"http://127.0.0.1:{self.guard.port}/launch/{launch_code(self.token.value)}"

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> str:
        """Bind and serve in the background; returns the control page's URL (OSError if no port is free)."""
        self._loop = asyncio.new_event_loop()
        # Each open socket keeps a worker waiting on its slot, and another encoding its JPEG.
        workers = 2 * MAX_SOCKETS + 4
        self._loop.set_default_executor(ThreadPoolExecutor(max_workers=workers, thread_name_prefix="fercam-window"))
        self._runner = self._loop.run_until_complete(self._bind())
        self._thread = threading.Thread(target=self._loop.run_forever, name="fercam-window", daemon=True)
        self._thread.start()
        return self.url

    async def _bind(self) -> web.AppRunner:
        runner = web.AppRunner(self._web_app(), shutdown_timeout=1.0, access_log=None, keepalive_timeout=IDLE_S)
        await runner.setup()
        server = guard(runner.server, self.guard.headers)
        quiet_loop_errors(asyncio.get_running_loop(), server.report)
        for port in dict.fromkeys((self.port, 0)):
            try:
                await web.TCPSite(runner, "127.0.0.1", port).start()
                break
            except OSError as exc:
                log.warning("window: port %s is taken (%s); using another one", port, exc)
        else:
            raise OSError("no free port on 127.0.0.1 for the FER Cam window")
        self.guard.port = runner.addresses[0][1]
        made_for = self.token.overlay_port if self.token.overlay else 0
        if self.token.serve(self.guard.port, os.getpid()) and made_for:  # `fercam window` finds us by it
            self.controls.app.report(
                f"the OBS overlay link changed: the old one was for port {made_for}, which FER Cam did not get; "
                "copy the new one into OBS from the window"
            )
        return runner

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        # Waiting changes are dropped; the one being applied ends while the loop can still take its outcome.
        self._changes.shutdown(wait=True, cancel_futures=True)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.run_until_complete(self._loop.shutdown_default_executor())  # socket waits end within 0.5 s
        self._loop.close()
        self._loop = self._runner = None

    # -- routes ---------------------------------------------------------------------
    def _web_app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard.middleware], client_max_size=MAX_BODY)
        app.on_response_prepare.append(self.guard.add_headers)
        app.on_shutdown.append(self.feeds.close_all)
        app.router.add_get("/", self._page)
        app.router.add_get("/overlay", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/emoji/{name}.png", self._emoji)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/settings", self._settings)
        app.router.add_post("/api/link", self._new_link)
        app.router.add_post("/api/quit", self._quit)
        app.router.add_get("/launch/{code}", self._launch)
        app.router.add_get("/ws/video", self.feeds.video)
        app.router.add_get("/ws/events", self.feeds.events)
        return app

    async def _page(self, request: web.Request) -> web.Response:
        return self._file(PAGES[request.path])

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in ASSETS:  # whatever its encoding, a name is looked up, never joined to a path
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        kind = KINDS[name.rsplit(".", 1)[-1]]
        return web.Response(body=self.files[name], content_type=kind, charset="utf-8")

    async def _emoji(self, request: web.Request) -> web.Response:
        """The app's own emoji (the ones drawn into the video), as PNG for the overlay page."""
        names = {e.label: e for e in Emotion}
        emotion = names.get(request.match_info["name"])
        if emotion is None:
            raise web.HTTPNotFound()
        png = cv2.imencode(".png", render_emoji(emotion, 128))[1].tobytes()
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def _launch(self, request: web.Request) -> web.Response:
        """A launch code, once, from this user only (where the system can tell): to the control page."""
        uid = peer_uid(request.transport)
        if (uid is not None and uid != os.getuid()) or not self.launches.redeem(request.match_info["code"]):
            return _error("this launch link is used, expired or not yours: open the window from FER Cam again", 403)
        raise web.HTTPSeeOther(f"/?token={self.token.value}")

    async def _state(self, _request: web.Request) -> web.Response:
        return web.json_response(self._with_links(self.controls.state()))

    def _with_links(self, state: dict) -> dict:
        return {**state, "overlay_url": self.overlay_url}

    async def _settings(self, request: web.Request) -> web.Response:
        """200 with the new state once applied; 400 with one line if refused or failed (nothing changed then);
        202 if it is still being applied after APPLY_WAIT_S (its outcome becomes a notice)."""
        try:
            changes = await asyncio.to_thread(load_json, await _body_text(request))  # off the loop: the video's
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of settings")
            self.controls.validate(changes)
        except ValueError as exc:  # json and UTF-8 errors are ValueErrors too
            return _error(exc, 400)
        except asyncio.TimeoutError:
            return _error(f"the request's body took over {BODY_S:g} s to arrive", 408)
        if self._waiting >= MAX_WAITING_CHANGES:
            return _error(f"{self._waiting} changes are still being applied: try again shortly", 429)
        self._waiting += 1
        done = asyncio.wrap_future(self._changes.submit(self.controls.change, changes))
        done.add_done_callback(self._changed)
        try:
            await asyncio.wait_for(asyncio.shield(done), APPLY_WAIT_S)
        except asyncio.TimeoutError:
            done.add_done_callback(lambda future: self._report_late(future, changes))
            pending = {**self.controls.state(), "pending": "still applying: a notice will say if it fails"}
            return web.json_response(self._with_links(pending), status=202)
        except ValueError as exc:
            return _error(exc, 400)
        except Exception as exc:  # a source or sink that broke in its own way (cv2.error, RuntimeError)
            self._report_unchanged(changes, exc)
            return _error(exc, 500)
        return web.json_response(self._with_links(self.controls.state()))

    def _changed(self, _future: Future) -> None:
        self._waiting -= 1

    def _report_late(self, future: asyncio.Future, changes: dict) -> None:
        if not future.cancelled() and future.exception() is not None:
            self._report_unchanged(changes, future.exception())

    def _report_unchanged(self, changes: dict, error: BaseException) -> None:
        self.controls.app.report(f"{', '.join(changes)} unchanged: {one_line(error)}", about_video="camera" in changes)

    async def _new_link(self, _request: web.Request) -> web.Response:
        self.token.rotate()
        await self.feeds.close_all(code=WSCloseCode.POLICY_VIOLATION, why="this link was replaced by a new one")
        # The whole link is shown on the page that asked for it; `fercam window` opens it; logs get a hint only.
        log.warning("FER Cam window: new link ...%s made; the old one no longer works", self.token.value[-4:])
        return web.json_response({"url": self.url, "overlay_url": self.overlay_url})

    async def _quit(self, _request: web.Request) -> web.Response:
        threading.Thread(target=self.quit, name="fercam-quit", daemon=True).start()  # it stops this server too
        return web.json_response({"quitting": True})


async def _body_text(request: web.Request) -> str:
    """The body as text: UTF-8 (JSON's encoding) only, and within BODY_S (asyncio.TimeoutError)."""
    if (request.charset or "utf-8").lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise ValueError(f"charset {request.charset[:40]!r}: send the settings as UTF-8 JSON")
    body = await asyncio.wait_for(request.read(), BODY_S)
    return body.decode("utf-8")


def _error(error: Exception | str, status: int) -> web.Response:
    return web.json_response({"error": one_line(error) if isinstance(error, Exception) else error}, status=status)
