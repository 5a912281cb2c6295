"""What the window's sockets stream: the annotated video as JPEG frames, and analyses plus status as JSON.

Each socket reads the runner's one-slot boxes on a worker thread and always takes the newest value,
so a slow browser skips frames instead of delaying the video or piling up memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import cv2
import numpy as np
from aiohttp import WSCloseCode, web

from fercam.apps.window.access import CONTROL
from fercam.events import face_record
from fercam.speaking.heard import heard_fields
from fercam.types import EMOTIONS, Analysis

PREVIEW_WIDTH = 960  # enough to judge the overlays; keeps JPEG encoding cheap
JPEG_QUALITY = 75
STATUS_EVERY_S = 1.0
OVERLAY_SETTINGS = ("show_boxes", "show_labels", "show_emoji", "unsure_faces")  # all the overlay page is told
MAX_SOCKETS = 12  # a few control pages and overlays; 200 sockets took the preview from 30 to 9.5 fps


def jpeg(image: np.ndarray) -> bytes:
    h, w = image.shape[:2]
    if w > PREVIEW_WIDTH:
        image = cv2.resize(image, (PREVIEW_WIDTH, round(h * PREVIEW_WIDTH / w)), interpolation=cv2.INTER_AREA)
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])[1].tobytes()


def analysis_message(analysis: Analysis, size: tuple[int, int], runner=None) -> dict:
    """Boxes in the pixels of the analysed image, whose size travels along so pages can scale them; while the voice
    is on, each face's `speaking` and `person` and the frame's `voice`, as `fercam run --events` writes them."""
    per_face, extra = {}, {}
    if runner is not None and runner.speaking is not None and runner.voice_probs is not None:
        per_face, extra = heard_fields(analysis, runner.voice_probs(), runner.speaking.now())
    faces = []
    for face in analysis.faces:
        record = face_record(face)  # as --events and timeline.csv write them; probabilities in "emotions" order
        faces.append({**record, "probs": list(record["probs"].values()), **per_face.get(face.id, {})})
    message = {"type": "analysis", "time": time.time(), "size": list(size), "faces": faces, "emotions": list(EMOTIONS)}
    return {**message, **extra}


class Feeds:
    """The two socket handlers over whatever runner the app has now (it changes on restart)."""

    def __init__(self, app, status, guard) -> None:
        self.app = app
        self.status = status  # () -> dict, the same panel the control page polls
        self.guard = guard  # access.Guard: asked again once a socket is open ("new link" may have come meanwhile)
        self.sockets: dict[web.WebSocketResponse, asyncio.Future | None] = {}  # each with the task that reads it

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        # One link is valid at a time, so this is the limit per link: each socket costs a worker and JPEG encoding.
        if len(self.sockets) >= MAX_SOCKETS:
            raise web.HTTPTooManyRequests(text=f"at most {MAX_SOCKETS} FER Cam sockets at once: close a page")
        # Pages send nothing; a page that never answers a close is let go after 2 s.
        ws = web.WebSocketResponse(heartbeat=20, timeout=2.0, max_msg_size=4096)
        self.sockets[ws] = None  # counted before the handshake's await
        try:
            await ws.prepare(request)
        except BaseException:
            self.sockets.pop(ws, None)
            raise
        if self.guard.refusal(request):  # the link was replaced during the handshake, after close_all's sweep
            self.sockets.pop(ws, None)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"this link was replaced by a new one")
            return ws
        self.sockets[ws] = asyncio.ensure_future(self._read_until_closed(ws))  # notices the page leaving
        return ws

    async def _read_until_closed(self, ws: web.WebSocketResponse) -> None:
        async for _message in ws:
            pass
        self.sockets.pop(ws, None)

    async def close_all(self, _app=None, *, code: int = WSCloseCode.GOING_AWAY, why: str = "FER Cam stops") -> None:
        """Close every socket at once: on quit, and on "new link" (all were opened with the old token)."""
        sockets = list(self.sockets)
        self.sockets.clear()  # each send loop checks ws.closed, which close() sets before its first await
        await asyncio.gather(*(ws.close(code=code, message=why.encode()) for ws in sockets), return_exceptions=True)

    async def _newest(self, slot_of, seen: tuple[object, int]) -> tuple[tuple[object, int], object]:
        """The value in `slot_of(runner)` once it is newer than `seen` (None after a short wait)."""
        runner = self.app.runner
        if runner is None:
            await asyncio.sleep(0.2)
            return seen, None
        slot = slot_of(runner)
        version = seen[1] if seen[0] is slot else 0
        new_version, value = await asyncio.to_thread(slot.wait_newer, version, 0.5)
        return (slot, new_version), value if new_version > version else None

    async def video(self, request: web.Request) -> web.WebSocketResponse:
        ws = await self._socket(request)
        with contextlib.suppress(ConnectionError):  # the page went away mid-frame
            await self._send_video(ws)
        return ws

    async def _send_video(self, ws: web.WebSocketResponse) -> None:
        seen: tuple[object, int] = (None, 0)
        while not ws.closed:
            seen, image = await self._newest(lambda runner: runner.sent, seen)
            if image is not None and not ws.closed:
                await ws.send_bytes(await asyncio.to_thread(jpeg, image))

    async def events(self, request: web.Request) -> web.WebSocketResponse:
        ws = await self._socket(request)
        status = self.status if self.guard.role(request) == CONTROL else self._overlay_status
        with contextlib.suppress(ConnectionError):
            await self._send_events(ws, status)
        return ws

    def _overlay_status(self) -> dict:
        """What the overlay link may know: which overlays to draw (no source, no notices, no other setting)."""
        settings = self.status()["settings"]
        return {"settings": {key: settings[key] for key in OVERLAY_SETTINGS}}

    async def _send_events(self, ws: web.WebSocketResponse, status) -> None:
        seen: tuple[object, int] = (None, 0)
        next_status = 0.0
        while not ws.closed:
            if time.monotonic() >= next_status:
                await ws.send_json({"type": "status", **status()})
                next_status = time.monotonic() + STATUS_EVERY_S
            seen, analysis = await self._newest(lambda runner: runner.analyses, seen)
            runner = self.app.runner
            image = runner.sent.get() if analysis is not None and runner else None
            if image is not None and not ws.closed:
                await ws.send_json(analysis_message(analysis, (image.shape[1], image.shape[0]), runner))
