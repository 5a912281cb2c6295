"""Who may use the window: a secret token, a loopback Host and, for sockets and changes, our own Origin.

Two tokens, two capabilities. The control token opens everything (video, settings, the link, quit); it is
made afresh at each start, as nothing outside this process needs it to last: the page is opened by FER Cam
itself, through a one-time launch code (below). The overlay token opens the OBS overlay and its event stream
only (boxes, labels, emoji); it lasts across restarts, so an OBS scene keeps working, but only on the port it was
made for: when FER Cam finds that port taken (someone else may be holding it to catch the link), it makes a new
overlay token for the port it gets, and the old one works nowhere. "New link" replaces both.

Neither travels in a cookie (browsers share cookies between all the ports of 127.0.0.1): the page sends the
token with each request, in the X-FerCam-Token header, and with each socket, in the URL's query. Every
response, errors included, carries the security headers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import socket
import struct
import time
from pathlib import Path

from aiohttp import web

from fercam.files import write_atomic

HEADER = "X-FerCam-Token"
LOOPBACK_NAMES = ("127.0.0.1", "localhost")
CONTROL, OVERLAY = "control", "overlay"
OVERLAY_PATHS = ("/overlay", "/ws/events")  # all the overlay token opens
LAUNCH_LIFE_S = 60.0


class LinkFile:
    """window.json, readable by the user only: the tokens, the port the overlay token is valid on, and the port
    and process now serving (how `fercam window` finds a running FER Cam)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        saved = self._read()
        self.value: str = saved.get("token", "")  # the control token
        self.overlay: str = saved.get("overlay", "")
        self.overlay_port: int = saved.get("overlay_port", 0)
        self.port: int = saved.get("port", 0)
        self.pid: int = saved.get("pid", 0)

    def _read(self) -> dict:
        try:
            data = json.loads(self.path.read_text())
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def serve(self, port: int, pid: int) -> bool:
        """Called once the server holds `port`: a new control token, and the overlay token kept only if it was
        made for this port. True if the overlay link changed (OBS needs the new one)."""
        self.port, self.pid, self.value = port, pid, _token()
        changed = not self.overlay or self.overlay_port != port
        if changed:
            self.overlay, self.overlay_port = _token(), port
        self.save()
        return changed

    def rotate(self) -> str:
        """ "New link": both tokens replaced."""
        self.value, self.overlay = _token(), _token()
        self.save()
        return self.value

    def save(self) -> None:
        data = {"token": self.value, "overlay": self.overlay, "overlay_port": self.overlay_port}
        write_atomic(self.path, json.dumps({**data, "port": self.port, "pid": self.pid}))

    def role(self, offered: str | None) -> str | None:
        """CONTROL, OVERLAY or None for the token a request offers."""
        for role, token in ((CONTROL, self.value), (OVERLAY, self.overlay)):
            if offered and token and hmac.compare_digest(offered.encode(), token.encode()):
                return role
        return None

    def matches(self, offered: str | None) -> bool:
        return self.role(offered) == CONTROL


def _token() -> str:
    return secrets.token_urlsafe(24)


# -- launching the browser without the token on its command line (where every local user can read it) --------
def launch_code(control_token: str, now: float | None = None) -> str:
    """A code that opens the control page once, within LAUNCH_LIFE_S: "time.nonce.mac", the mac keyed by the
    control token, so `fercam window` (which can read window.json) can make one without asking the server."""
    stamp, nonce = str(int(time.time() if now is None else now)), secrets.token_urlsafe(12)
    return f"{stamp}.{nonce}.{_mac(control_token, stamp, nonce)}"


def _mac(key: str, stamp: str, nonce: str) -> str:
    return hmac.new(key.encode(), f"launch.{stamp}.{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


class Launches:
    """Redeems launch codes: each once, while young, and only while the token that signed it is current."""

    def __init__(self, links: LinkFile) -> None:
        self.links = links
        self.used: dict[str, float] = {}  # nonce -> when it expires

    def redeem(self, code: str) -> bool:
        stamp, _, rest = code.partition(".")
        nonce, _, mac = rest.partition(".")
        now = time.time()
        if not (stamp.isdigit() and nonce and -5 <= now - int(stamp) <= LAUNCH_LIFE_S):
            return False
        if not hmac.compare_digest(mac.encode(), _mac(self.links.value, stamp, nonce).encode()):
            return False
        self.used = {n: until for n, until in self.used.items() if until > now}
        if nonce in self.used:
            return False
        self.used[nonce] = int(stamp) + LAUNCH_LIFE_S + 5
        return True


def peer_uid(transport) -> int | None:
    """Linux: the user owning the other end of a loopback TCP connection, read from /proc/net/tcp (None where
    it cannot be told). Another local account can see a launch code in `ps`; it cannot redeem it."""
    if transport is None:
        return None
    peer, own = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
    try:
        wanted = (_proc_address(peer), _proc_address(own))
        with open("/proc/net/tcp") as table:
            for line in table.readlines()[1:]:
                fields = line.split()
                if (fields[1], fields[2]) == wanted:
                    return int(fields[7])
    except (OSError, ValueError, TypeError, IndexError, struct.error):
        return None
    return None


def _proc_address(address) -> str:
    """An IPv4 (host, port) as /proc/net/tcp writes it: the address as a native-order 32-bit number, in hex."""
    number = struct.unpack("=I", socket.inet_aton(address[0]))[0]
    return f"{number:08X}:{address[1]:04X}"


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
        role = self.role(request)
        if role == CONTROL or (role == OVERLAY and request.path in OVERLAY_PATHS):
            return None
        if role == OVERLAY:
            return "the overlay link shows the overlay only: open the link FER Cam printed"
        return "missing or outdated token: open the link FER Cam printed"

    def role(self, request: web.Request) -> str | None:
        return self.token.role(request.headers.get(HEADER) or request.query.get("token"))

    @web.middleware
    async def middleware(self, request: web.Request, handler) -> web.StreamResponse:
        reason = self.refusal(request)
        if reason:
            return web.json_response({"error": reason}, status=403)
        return await handler(request)

    def headers(self) -> dict[str, str]:
        """The page may talk to this port only, may not be framed, and nothing holding the token (the page's
        URL, /api/state) is cached or sent on as a Referer."""
        sockets = " ".join(f"ws://{host}" for host in sorted(self.allowed_hosts()))
        return {
            "Content-Security-Policy": (
                f"default-src 'self'; connect-src 'self' {sockets}; object-src 'none'; "
                "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "X-Frame-Options": "DENY",
            "Cross-Origin-Resource-Policy": "same-origin",  # no other site may embed even the public files
        }

    async def add_headers(self, _request: web.Request, response: web.StreamResponse) -> None:
        """aiohttp's on_response_prepare: the security headers, and no-store unless the answer says otherwise."""
        response.headers.update(self.headers())
        response.headers.setdefault("Cache-Control", "no-store")
