"""Who may use the window: a secret token, a loopback Host and, for sockets and changes, our own Origin.

The token sits in the config folder so an OBS overlay URL keeps working across restarts; "new link"
replaces it, which locks out every page and socket that still holds the old one. It never travels in a
cookie (browsers share cookies between all the ports of 127.0.0.1): the page sends it with each request, in
the X-FerCam-Token header, and with each socket, in the URL's query. Every response, errors included, carries
the security headers.
"""

from __future__ import annotations

import hmac
import json
import os
import secrets
from pathlib import Path

from aiohttp import web

HEADER = "X-FerCam-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class LinkFile:
    """The token (created on first use), and the port and process that last served it; readable by the user only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        saved = self._read()
        self.value, self.port, self.pid = saved.get("token", ""), saved.get("port", 0), saved.get("pid", 0)
        if not self.value:
            self.rotate()

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def rotate(self) -> str:
        self.value = secrets.token_urlsafe(24)
        self.save()
        return self.value

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump({"token": self.value, "port": self.port, "pid": self.pid}, handle)
        os.replace(tmp, self.path)

    def matches(self, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(offered.encode(), self.value.encode())


class Guard:
    """aiohttp middleware that refuses before any handler runs, and the hook that adds the security headers
    to every response the app prepares (refusals, 404s, 413s and 500s included)."""

    def __init__(self, token: LinkFile, *, public: tuple[str, ...] = ()) -> None:
        self.token = token
        self.public = public  # path prefixes that hold nothing secret: the packaged scripts, the emoji, the favicon
        self.port = 0  # known once the socket is bound

    def allowed_hosts(self) -> set[str]:
        return {f"{name}:{self.port}" for name in LOOPBACK_NAMES}

    def refusal(self, request: web.Request) -> str | None:
        """Why this request is refused, or None."""
        if request.host not in self.allowed_hosts():
            return f"Host {request.host!r} is not this computer's loopback address"
        origin = request.headers.get("Origin")
        writes = request.method not in ("GET", "HEAD") or request.headers.get("Upgrade", "").lower() == "websocket"
        if writes and origin is not None and origin.removeprefix("http://") not in self.allowed_hosts():
            return f"Origin {origin!r} may not use FER Cam"
        if request.path.startswith(self.public):
            return None
        offered = request.headers.get(HEADER) or request.query.get("token")
        return None if self.token.matches(offered) else "missing or outdated token: open the link FER Cam printed"

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        reason = self.refusal(request)
        if reason:
            return web.json_response({"error": reason}, status=403)
        return await handler(request)

    async def add_headers(self, _request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp's on_response_prepare: the page may talk to this port only, may not be framed, and nothing
        holding the token (the page's URL, /api/state) is cached or sent on as a Referer."""
        sockets = " ".join(f"ws://{host}" for host in sorted(self.allowed_hosts()))
        response.headers.update(
            {
                "Content-Security-Policy": (
                    f"default-src 'self'; connect-src 'self' {sockets}; object-src 'none'; "
                    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
                ),
                "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer",
                "X-Frame-Options": "DENY",
                "Cross-Origin-Resource-Policy": "same-origin",  # no other site may embed even the public files
            }
        )
        response.headers.setdefault("Cache-Control", "no-store")
