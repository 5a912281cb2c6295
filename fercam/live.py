"""Live mode: two threads so the video never waits for, or dies with, the model."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from fercam.annotate import annotate, message_frame
from fercam.pipeline import Analyzer, LatestSlot, LiveStats, mirrored
from fercam.settings import Settings, SettingsStore
from fercam.types import Analysis, Frame

log = logging.getLogger(__name__)

DISCONNECTED = "Camera disconnected - waiting for it to come back"


class LiveRunner:
    """Reads, annotates with the newest analysis and sends; a second thread analyses.

    `make_analyzer(settings)` runs on the inference thread, so models load while the
    raw video already flows, and again when the user picks another detector.
    """

    def __init__(
        self,
        source,
        sink,
        store: SettingsStore,
        make_analyzer: Callable[[Settings], Analyzer],
        *,
        stale_after_s: float = 1.0,
        drop_after_s: float = 5.0,
        on_analysis: Callable[[Analysis, Frame], None] | None = None,
    ) -> None:
        self.source, self.sink, self.store = source, sink, store
        self.make_analyzer = make_analyzer
        self.stale_after_s, self.drop_after_s = stale_after_s, drop_after_s
        self.on_analysis = on_analysis
        self.voice: Callable[[], np.ndarray | None] | None = None  # newest voice probabilities, if listening
        self.stats = LiveStats()
        self.started_at = time.monotonic()
        self._stop = threading.Event()
        self._frames = LatestSlot()
        self.analyses = LatestSlot()  # the newest Analysis: for the window, the overlay page and tests
        self.sent = LatestSlot()  # the newest image as sent (annotated): for the window's preview

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, *, max_frames: int = 0) -> int:
        """Run until stopped, the source ends, or `max_frames` were sent; returns frames sent."""
        worker = threading.Thread(target=self._infer_loop, name="fercam-infer", daemon=True)
        worker.start()
        try:
            while not self._stop.is_set() and (not max_frames or self.stats.frames_sent < max_frames):
                if not self._video_step():
                    break
        finally:
            self._stop.set()
            worker.join(timeout=2)
        return self.stats.frames_sent

    # -- video thread ---------------------------------------------------------------
    def _video_step(self) -> bool:
        frame = self.source.read()
        captured = time.monotonic()
        if frame is None:
            return self._handle_missing_frame()
        settings = self.store.get()
        frame = mirrored(frame) if settings.mirror else frame
        self._frames.put(frame)
        if self.stats.first_frame_at is None:
            self.stats.first_frame_at = captured
        analysis, stale = self._fresh_analysis(frame)
        voice = self.voice() if self.voice is not None else None
        self._send(annotate(frame.image, analysis, settings, stale=stale, voice=voice))
        if analysis is not None and not stale and self.stats.first_annotated_at is None:
            self.stats.first_annotated_at = time.monotonic()
        self.stats.latencies_ms.append((time.monotonic() - captured) * 1000)
        return True

    def _fresh_analysis(self, frame: Frame) -> tuple[Analysis | None, bool]:
        analysis = self.analyses.get()
        if analysis is None:
            return None, False
        age = frame.timestamp - analysis.timestamp
        if age > self.drop_after_s:
            return None, False
        return analysis, bool(self.stats.error) or age > self.stale_after_s

    def _send(self, image) -> None:
        self.sink.send(image)
        self.sent.put(image)
        self.stats.frames_sent += 1
        self.stats.sent_times.append(time.monotonic())
        if self.sink.closed:
            self._stop.set()

    def _handle_missing_frame(self) -> bool:
        """The end of a clip; or a camera gone: keep the output alive and try to reconnect."""
        if not self.source.reconnects:
            return False
        settings = self.store.get()
        self._send(message_frame(DISCONNECTED, settings.width, settings.height))
        if self.source.reopen():
            log.info("camera reconnected")
        else:
            self._stop.wait(1.0 / max(1, settings.fps))
        return True

    # -- inference thread -----------------------------------------------------------
    def _infer_loop(self) -> None:
        analyzer, detector_name, seen = None, None, 0
        while not self._stop.is_set():
            seen, frame = self._frames.wait_newer(seen, timeout=0.2)
            if frame is None or self._stop.is_set():
                continue
            try:
                settings = self.store.get()
                if analyzer is None or settings.detector != detector_name:
                    analyzer, detector_name = self.make_analyzer(settings), settings.detector
                started = time.perf_counter()
                analysis = analyzer.analyze(frame)
                busy_ms = (time.perf_counter() - started) * 1000
            except Exception as exc:  # the video must outlive any model failure
                self._report_error(exc)
                continue
            self.stats.error = ""
            self.stats.analyses += 1
            self.stats.faces = len(analysis.faces)
            self.stats.analysis_times.append(time.monotonic())
            self.stats.analysis_ms.append(busy_ms)
            self.analyses.put(analysis)
            if self.on_analysis:
                self.on_analysis(analysis, frame)

    def _report_error(self, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if message != self.stats.error:
            log.error("analysis failed, video continues without fresh overlays: %s", message)
        self.stats.error = message
        self._stop.wait(0.5)  # do not spin on a model that keeps failing
