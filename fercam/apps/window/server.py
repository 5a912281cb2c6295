"""The window's web server: aiohttp on 127.0.0.1 in a thread of its own, beside the video threads."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import cv2
from aiohttp import web

from fercam.apps.window.access import Guard, LinkFile
from fercam.apps.window.controls import Controls
from fercam.apps.window.feeds import Feeds
from fercam.emoji import render_emoji
from fercam.types import Emotion

log = logging.getLogger(__name__)

DEFAULT_PORT = 8737  # fixed, so an OBS Browser Source URL survives restarts; another one if taken
STATIC = files("fercam.apps.window") / "static"
PAGES = {"/": "control.html", "/overlay": "overlay.html"}


class WindowServer:
    """Serves the control page, the overlay page, their sockets and a small JSON API."""

    def __init__(
        self, controls: Controls, *, token_path: Path, quit: Callable[[], None], port: int = DEFAULT_PORT
    ) -> None:
        self.controls, self.quit, self.port = controls, quit, port
        self.token = LinkFile(token_path)
        self.guard = Guard(self.token, public=("/favicon.ico",))
        self.feeds = Feeds(controls.app, controls.status)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.guard.port}/?token={self.token.value}"

    @property
    def overlay_url(self) -> str:
        return f"http://127.0.0.1:{self.guard.port}/overlay?token={self.token.value}"

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> str:
        """Bind and serve in the background; returns the control page's URL (OSError if no port is free)."""
        self._loop = asyncio.new_event_loop()
        # Each open socket keeps a worker waiting on its slot; leave room for several pages and the encoder.
        self._loop.set_default_executor(ThreadPoolExecutor(max_workers=16, thread_name_prefix="fercam-window"))
        self._runner = self._loop.run_until_complete(self._bind())
        self._thread = threading.Thread(target=self._loop.run_forever, name="fercam-window", daemon=True)
        self._thread.start()
        return self.url

    async def _bind(self) -> web.AppRunner:
        runner = web.AppRunner(self._web_app(), shutdown_timeout=1.0, access_log=None)
        await runner.setup()
        for port in dict.fromkeys((self.port, 0)):
            try:
                await web.TCPSite(runner, "127.0.0.1", port).start()
                break
            except OSError as exc:
                log.warning("window: port %s is taken (%s); using another one", port, exc)
        else:
            raise OSError("no free port on 127.0.0.1 for the FER Cam window")
        self.guard.port = self.token.port = runner.addresses[0][1]
        self.token.pid = os.getpid()
        self.token.save()  # `fercam window` finds this server by it
        return runner

    def stop(self) -> None:
        if self._loop is None or self._runner is None:
            return
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.run_until_complete(self._loop.shutdown_default_executor())  # socket waits end within 0.5 s
        self._loop.close()
        self._loop = self._runner = None

    # -- routes ---------------------------------------------------------------------
    def _web_app(self) -> web.Application:
        app = web.Application(middlewares=[self.guard.middleware])
        app.on_shutdown.append(self.feeds.close_all)
        app.router.add_get("/", self._page)
        app.router.add_get("/overlay", self._page)
        app.router.add_get("/static/{name}", self._static)
        app.router.add_get("/emoji/{name}.png", self._emoji)
        app.router.add_get("/api/state", self._state)
        app.router.add_post("/api/settings", self._settings)
        app.router.add_post("/api/link", self._new_link)
        app.router.add_post("/api/quit", self._quit)
        app.router.add_get("/ws/video", self.feeds.video)
        app.router.add_get("/ws/events", self.feeds.events)
        return app

    async def _page(self, request: web.Request) -> web.Response:
        return self._file(PAGES[request.path])

    async def _static(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in PAGES.values() or not (STATIC / name).is_file():
            raise web.HTTPNotFound()
        return self._file(name)

    def _file(self, name: str) -> web.Response:
        kinds = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
        kind = kinds[name.rsplit(".", 1)[-1]]
        headers = {"Cache-Control": "no-store"}
        return web.Response(body=(STATIC / name).read_bytes(), content_type=kind, charset="utf-8", headers=headers)

    async def _emoji(self, request: web.Request) -> web.Response:
        """The app's own emoji (the ones drawn into the video), as PNG for the overlay page."""
        names = {e.label: e for e in Emotion}
        emotion = names.get(request.match_info["name"])
        if emotion is None:
            raise web.HTTPNotFound()
        png = cv2.imencode(".png", render_emoji(emotion, 128))[1].tobytes()
        return web.Response(body=png, content_type="image/png", headers={"Cache-Control": "max-age=3600"})

    async def _state(self, _request: web.Request) -> web.Response:
        return web.json_response({**self.controls.state(), "overlay_url": self.overlay_url})

    async def _settings(self, request: web.Request) -> web.Response:
        try:
            changes = await request.json()
            if not isinstance(changes, dict):
                raise ValueError("send a JSON object of settings")
            restart = self.controls.change(changes)
        except ValueError as exc:  # json errors are ValueErrors too
            return web.json_response({"error": str(exc).splitlines()[0]}, status=400)
        if restart:
            await asyncio.to_thread(restart)
        return web.json_response(self.controls.state())

    async def _new_link(self, _request: web.Request) -> web.Response:
        self.token.rotate()
        log.warning("FER Cam window: new link %s (the old one no longer works)", self.url)
        response = web.json_response({"url": self.url, "overlay_url": self.overlay_url})
        response.del_cookie("fercam_token", path="/")
        return response

    async def _quit(self, _request: web.Request) -> web.Response:
        threading.Thread(target=self.quit, name="fercam-quit", daemon=True).start()  # it stops this server too
        return web.json_response({"quitting": True})
