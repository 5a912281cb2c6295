"""The window's server in this process, over a real App and real sockets: changes that break in their own way,
a Quit while a change is being applied, and a socket whose handshake a "New link" overtakes."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import logging
import threading
import time

import aiohttp
import cv2
import pytest

import fercam.apps.app
from fercam.apps.app import App
from fercam.apps.window.controls import Controls
from fercam.apps.window.server import WindowServer
from fercam.settings import SettingsStore


@pytest.fixture
def server(media_dir, tmp_path):
    app = App(SettingsStore(tmp_path / "settings.json"), sink_spec=f"file:{tmp_path / 'out.mp4'}")
    app.source_spec = str(media_dir / "fer_test.mp4")
    server = WindowServer(
        Controls(app, cameras=["0"], detectors={"mtcnn": None}),
        token_path=tmp_path / "window.json",
        quit=app.stop,
        port=0,
    )
    yield server
    app.stop()
    server.stop()


def post_change(server: WindowServer, changes: dict) -> tuple[int, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", server.guard.port, timeout=30)
    headers = {"X-FerCam-Token": server.token.value, "Origin": f"http://127.0.0.1:{server.guard.port}"}
    conn.request("POST", "/api/settings", body=json.dumps(changes).encode(), headers=headers)
    reply = conn.getresponse()
    result = reply.status, json.loads(reply.read())
    conn.close()
    return result


def source_that_fails(after_s: float, error: Exception, ended: threading.Event | None = None):
    def open_source(*_args, **_options):
        time.sleep(after_s)
        if ended is not None:
            ended.set()
        raise error

    return open_source


def test_a_change_that_breaks_in_its_own_way_answers_one_line_and_says_so(server, monkeypatch):
    server.start()
    monkeypatch.setattr(fercam.apps.app, "open_source", source_that_fails(0, cv2.error("the driver broke\nat line 7")))
    status, answer = post_change(server, {"camera": "1"})
    assert status == 500 and answer["error"] == "the driver broke" and "Traceback" not in answer["error"]
    assert server.controls.app.notices[-1] == "camera unchanged: the driver broke"
    monkeypatch.setattr(fercam.apps.app, "open_source", source_that_fails(2.5, RuntimeError("the stream hung up")))
    status, answer = post_change(server, {"camera": "1"})
    assert status == 202  # still applying after 2 s: its failure comes as a notice
    deadline = time.monotonic() + 5
    while server.controls.app.notices[-1] != "camera unchanged: the stream hung up" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert server.controls.app.notices[-1] == "camera unchanged: the stream hung up"
    assert post_change(server, {"show_boxes": False})[0] == 200  # the server goes on


def test_quit_while_a_change_is_applied_waits_for_it_without_errors(server, monkeypatch, caplog):
    server.start()
    ended = threading.Event()
    monkeypatch.setattr(fercam.apps.app, "open_source", source_that_fails(3, RuntimeError("too late"), ended))

    def ask() -> None:
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):  # cut off by the Quit
            post_change(server, {"camera": "1"})

    asked = threading.Thread(target=ask)
    asked.start()
    time.sleep(0.5)  # the change is being applied
    with caplog.at_level(logging.DEBUG):
        server.stop()
        assert ended.is_set()  # the change ended while the loop could still take its outcome
        asked.join(timeout=10)
        time.sleep(0.5)  # any late callback would have run by now
    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert problems == [] and not any("Event loop is closed" in r.getMessage() for r in caplog.records)


def test_a_socket_whose_handshake_a_new_link_overtakes_is_closed(server):
    add_headers = server.guard.add_headers

    async def new_link_meanwhile(request, response) -> None:  # "New link" arrives while a socket is being opened
        await add_headers(request, response)
        if request.path.startswith("/ws/"):
            await server._new_link(request)

    server.guard.add_headers = new_link_meanwhile
    server.start()
    old = server.token.value

    async def first_message() -> aiohttp.WSMessage:
        url = f"ws://127.0.0.1:{server.guard.port}/ws/events?token={old}"
        async with aiohttp.ClientSession() as session:
            origin = {"Origin": f"http://127.0.0.1:{server.guard.port}"}
            async with session.ws_connect(url, headers=origin) as ws:
                return await ws.receive(timeout=5)

    message = asyncio.run(first_message())
    assert server.token.value != old
    assert message.type == aiohttp.WSMsgType.CLOSE and message.data == 1008, message
    assert not server.feeds.sockets
