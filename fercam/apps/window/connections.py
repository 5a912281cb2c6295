"""The window's connections, below the routes: how many may be open, how long one may idle or dawdle over a
request, and what aiohttp's own answers (a malformed request's 400) carry and log.

aiohttp takes every connection it is offered and waits for ever on one that sends nothing, so 160 silent
sockets from any local account used up a low descriptor limit, and each refused accept() logged a traceback.
Here: at most MAX_CONNECTIONS at once (a new one closes the oldest that has no request being answered, so silent
sockets cannot lock the page out; when all are busy, it gets a 503 and is closed at once), IDLE_S to send a whole
request head (aiohttp's keep-alive timer, which runs from the connection's start and through a half-sent head),
aiohttp's errors answered with the security headers and logged in one line, at most once per LOG_EVERY_S.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from http import HTTPStatus

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from fercam.errors import one_line

log = logging.getLogger(__name__)

MAX_CONNECTIONS = 48  # 12 sockets (feeds.MAX_SOCKETS) and the page loads of a few windows, with room to spare
IDLE_S = 10.0  # to send a request head, on a new connection or between two requests
BODY_S = 10.0  # to send a request body (read in the handler: the keep-alive timer stops once the head is in)
LOG_EVERY_S = 10.0


class OncePerWhile:
    """Logs each kind of message at most once per LOG_EVERY_S, in one line, and counts what it left out."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}
        self._skipped: dict[str, int] = {}

    def __call__(self, kind: str, message: str) -> None:
        now = time.monotonic()
        if now - self._last.get(kind, -LOG_EVERY_S) < LOG_EVERY_S:
            self._skipped[kind] = self._skipped.get(kind, 0) + 1
            return
        skipped = self._skipped.pop(kind, 0)
        self._last[kind] = now
        log.warning("window: %s%s", message, f" (and {skipped} more like it)" if skipped else "")


class _Handler(RequestHandler):
    """aiohttp's connection handler; its own error answers (malformed requests) get our headers and one line."""

    @property
    def idle(self) -> bool:
        """Open, with no request being answered (none yet, half a head, or idle between two): its place can go to
        a newcomer. A socket's handshake, once answered, stays a request in progress for the socket's life."""
        return self.transport is not None and not self._request_in_progress

    def handle_error(self, request, status: int = 500, exc: BaseException | None = None, message=None):
        server: GuardedServer = self._manager
        server.report("error", f"{status} for a request from {request.remote}: {_one_line(exc or message)}")
        log.debug("window: the request's error", exc_info=exc)  # the traceback, with --debug
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was already on its way")
        headers = {**server.headers(), "Cache-Control": "no-store"}
        response = web.Response(status=status, text=_status_line(status), headers=headers)
        response.force_close()
        return response


class GuardedServer(web.Server):
    """aiohttp's server with a cap on connections; made by `guard(runner.server, headers)`."""

    headers: Callable[[], dict[str, str]]
    report: OncePerWhile

    def __call__(self) -> RequestHandler:
        return _Handler(self, loop=self._loop, **self._kwargs)

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        if len(self.connections) >= MAX_CONNECTIONS:
            idle = next((old for old in self.connections if old.idle), None)  # the oldest first
            if idle is not None:
                self.report("full", f"{MAX_CONNECTIONS} connections open: closing the oldest that sends nothing")
                idle.force_close()
                super().connection_made(handler, transport)
                return
            self.report("full", f"{MAX_CONNECTIONS} connections open, all busy: refusing more until some close")
            lines = [f"{k}: {v}" for k, v in {**self.headers(), "Connection": "close", "Content-Length": "0"}.items()]
            transport.write(("HTTP/1.1 503 Service Unavailable\r\n" + "\r\n".join(lines) + "\r\n\r\n").encode())
            handler.force_close()  # never counted, so it never holds a place
            return
        super().connection_made(handler, transport)


def guard(server: web.Server, headers: Callable[[], dict[str, str]]) -> GuardedServer:
    """Turns the runner's server (set up, not yet listening) into a GuardedServer; `headers` gives the security
    headers its own answers carry."""
    server.__class__ = GuardedServer  # aiohttp makes its Server itself; only its connection handler changes
    server.headers, server.report = headers, OncePerWhile()
    return server


def quiet_loop_errors(loop: asyncio.AbstractEventLoop, report: OncePerWhile) -> None:
    """asyncio's own errors (accept() out of descriptors, say) in one line each, not a traceback per try."""

    def handle(_loop, context: dict) -> None:
        report(f"loop: {context.get('message')}", f"{context.get('message')}: {_one_line(context.get('exception'))}")

    loop.set_exception_handler(handle)


def _status_line(status: int) -> str:
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def _one_line(what) -> str:
    return one_line(what)[:200]  # a log line's worth
