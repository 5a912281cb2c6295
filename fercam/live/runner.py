"""LIVE mode: the video never waits for, or dies with, the camera or the model.

Three threads, joined by one-slot boxes that drop stale values instead of queueing them:
- capture: `source.read()`, and reconnection when a camera or stream is lost, so a hung
  stream can only stall this thread;
- video (the caller's): the newest frame -> `prepare` -> `render` with the newest analysis
  -> `sink.send`; while the camera is away it sends a "disconnected" frame at the output's
  size and rate, so recordings and calls keep their timing;
- inference: the newest frame -> FaceReader -> the newest analysis.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import numpy as np

from fercam.annotate import message_frame
from fercam.contracts import CueReader, Sink, Source
from fercam.live.clocks import FrameClock
from fercam.live.slots import LatestSlot
from fercam.live.stats import LiveStats
from fercam.pipeline import FaceReader, ReaderConfig, make_cue_reader, prepare, render
from fercam.settings import Settings, SettingsStore
from fercam.types import Analysis, Frame

log = logging.getLogger(__name__)

DISCONNECTED = "Camera disconnected - waiting for it to come back"


class LiveRunner:
    """Runs LIVE mode until stopped, the source ends, or the sink is closed. Its caller calls
    `set_up_for_live_threads()` once, before opening the source (FFmpeg sizes its threads then).

    `make_reader(config)` runs on the inference thread as it starts, so models load while the camera opens
    and the raw video already flows, and again when the user picks another detector; `make_cue_reader()`
    likewise, the first time the body cues are switched on.
    """

    def __init__(
        self,
        source: Source,
        sink: Sink,
        store: SettingsStore,
        make_reader: Callable[[ReaderConfig], FaceReader],
        *,
        make_cue_reader: Callable[[], CueReader] = make_cue_reader,
        stale_after_s: float = 1.0,
        drop_after_s: float = 5.0,
        lost_after_s: float = 1.0,
        retry_s: float = 1.0,
        max_analysis_hz: float = 22.0,
        on_analysis: Callable[[Analysis, Frame], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        clock: FrameClock | None = None,
    ) -> None:
        self.source, self.sink, self.store = source, sink, store
        self.clock = clock or FrameClock()  # set before each send: a recording made with it follows the frames
        self.on_error = on_error  # told once per new error, e.g. the tray's notification
        self.make_reader, self.make_cue_reader = make_reader, make_cue_reader
        self.stale_after_s, self.drop_after_s, self.lost_after_s = stale_after_s, drop_after_s, lost_after_s
        self.retry_s = retry_s  # between attempts to reopen a lost camera
        self.min_analysis_gap_s = 1.0 / max_analysis_hz  # boxes follow at this rate; more buys nothing visible
        self.on_analysis = on_analysis
        self.voice_probs: Callable[[], np.ndarray | str | None] | None = None  # the microphone's newest reading
        self.speaking = None  # who speaks (`fercam.live.speaking.LiveSpeaking`), while the voice is on
        self.stats = LiveStats()
        self.started_at = time.monotonic()
        self.analyses = LatestSlot()  # the newest Analysis: for the window, the overlay page and tests
        self.sent = LatestSlot()  # the newest image as sent (annotated): for the window's preview
        self.body_cues = LatestSlot()  # the newest body-language cues per face id, while "Body cues" is on
        self._cue_reader = None  # built on the inference thread the first time the cues are switched on
        self._stop = threading.Event()
        self._ended = threading.Event()  # the source has no more frames (end of a clip)
        self._captured = LatestSlot()  # (raw frame, when it was read) from the capture thread
        self._prepared = LatestSlot()  # frames as analysed, for the inference thread
        self._seen = 0
        self._last_frame_at = time.monotonic()
        self._last_sent_at = 0.0
        self._last_size: tuple[int, int] | None = None

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def run(self, *, max_frames: int = 0) -> int:
        """Run until stopped, the source ends, or `max_frames` were sent; returns the frames sent."""
        threads = [
            threading.Thread(target=self._capture_loop, name="fercam-capture", daemon=True),
            threading.Thread(target=self._infer_loop, name="fercam-infer", daemon=True),
        ]
        for thread in threads:
            thread.start()
        try:
            while not self._stop.is_set() and (not max_frames or self.stats.frames_sent < max_frames):
                if not self._video_step():
                    break
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=2)
        return self.stats.frames_sent

    # -- capture thread ---------------------------------------------------------------
    def _capture_loop(self) -> None:
        while not self._stop.is_set():
            started = time.thread_time()
            try:
                frame = self.source.read()
            except Exception as exc:  # a camera that raises is a camera lost, not the end of the video
                log.warning("camera read failed: %s", exc)
                log.debug("camera read failed", exc_info=True)
                frame = None
            self.stats.charge("capture", started)
            if frame is not None:
                self._captured.put((frame, time.monotonic()))
            elif not self.source.reconnects:
                self._end()
                return
            else:
                self._reconnect()

    def _end(self) -> None:
        """The source is done: once the video thread has shown the last frame, wake it to finish."""
        deadline = time.monotonic() + 1.0
        while self._seen < self._captured.version and time.monotonic() < deadline and not self._stop.is_set():
            self._stop.wait(0.005)
        self._ended.set()
        self._captured.put(None)

    def _reconnect(self) -> None:
        self.stats.camera_lost = True
        while not self._stop.is_set():
            try:
                if self.source.reopen():
                    log.info("camera reconnected")
                    break
            except Exception as exc:
                log.debug("reconnect failed: %s", exc)
            self._stop.wait(self.retry_s)
        self.stats.camera_lost = False

    # -- video thread -----------------------------------------------------------------
    def _video_step(self) -> bool:
        settings = self.store.get()
        period = 1.0 / max(1, settings.fps)
        started = self.stats.first_frame_at is not None
        lost = self._camera_away()
        # Wait for the camera until the next frame is due (one period of grace while it is not lost);
        # then fill in, so the output, and any recording of it, keeps its rate while the camera is late or away.
        grace = period if lost else 2 * period
        timeout = max(0.0, self._last_sent_at + grace - time.monotonic()) if started else self.lost_after_s
        version, captured = self._captured.wait_newer(self._seen, timeout)
        if captured is None and self._ended.is_set():
            return False
        if version > self._seen:
            self._seen = version
            self._show(*captured, settings)
        elif self._camera_away():  # asked again: the wait may have crossed the threshold
            width, height = self._last_size or (settings.width, settings.height)
            self._send(message_frame(DISCONNECTED, width, height))
        elif started:
            self._send(self.sent.get())  # late: hold the last picture rather than skip a beat
        return True

    def _camera_away(self) -> bool:
        return self.stats.camera_lost or time.monotonic() - self._last_frame_at > self.lost_after_s

    def _show(self, frame: Frame, captured: float, settings: Settings) -> None:
        self._last_frame_at = time.monotonic()
        if self.stats.first_frame_at is None:
            self.stats.first_frame_at = self._last_frame_at
        cpu = time.thread_time()
        frame = prepare(frame, settings)
        self._prepared.put(frame)
        analysis, stale = self._fresh_analysis(frame)
        voice = self.voice_probs() if self.voice_probs is not None else None
        body = self.body_cues.get() if settings.body_cues else None
        if self.speaking is not None:
            self.speaking.saw(frame, captured)
        speaking = self.speaking.now() if self.speaking is not None and voice is not None else None
        image = render(frame, analysis, settings, stale=stale, voice=voice, body=body, speaking=speaking)
        self.stats.charge("render", cpu)
        self._send(image, captured)
        if analysis is not None and not stale and self.stats.first_annotated_at is None:
            self.stats.first_annotated_at = time.monotonic()
        self.stats.latencies_ms.append((time.monotonic() - captured) * 1000)

    def _fresh_analysis(self, frame: Frame) -> tuple[Analysis | None, bool]:
        analysis = self.analyses.get()
        if analysis is None:
            return None, False
        age = frame.timestamp - analysis.timestamp
        if age > self.drop_after_s:
            return None, False
        return analysis, bool(self.stats.error) or age > self.stale_after_s

    def _send(self, image: np.ndarray, captured: float | None = None) -> None:
        """`captured`: when the frame was read; a repeated or "disconnected" picture is shown now."""
        cpu = time.thread_time()
        self.clock.time = time.monotonic() if captured is None else captured
        self.sink.send(image)
        self.stats.charge("send", cpu)
        self._last_sent_at = time.monotonic()
        self._last_size = image.shape[1], image.shape[0]
        self.sent.put(image)
        self.stats.frames_sent += 1
        self.stats.sent_times.append(self._last_sent_at)
        if self.sink.closed:
            self._stop.set()

    # -- inference thread -------------------------------------------------------------
    def _infer_loop(self) -> None:
        # The models load now, while the camera opens and its first frames are shown raw, not after the first frame
        loaded_for = ReaderConfig.from_settings(self.store.get())
        reader, seen = self._load(loaded_for), 0
        while not self._stop.is_set():
            seen, frame = self._prepared.wait_newer(seen, timeout=0.2)
            if frame is None or self._stop.is_set():
                continue
            config = ReaderConfig.from_settings(self.store.get())
            if config != loaded_for:
                loaded_for, reader = config, self._load(config)
            if reader is not None:
                started = time.monotonic()
                self._analyse(reader, frame)
                self._stop.wait(max(0.0, started + self.min_analysis_gap_s - time.monotonic()))

    def _load(self, config: ReaderConfig) -> FaceReader | None:
        """The models for this config; a failure is reported once, then waits for other settings."""
        try:
            reader = self.make_reader(config)
        except Exception as exc:
            self._report_error("cannot load the models", exc)
            return None
        self.stats.error = ""
        return reader

    def _analyse(self, reader: FaceReader, frame: Frame) -> None:
        try:
            started, cpu = time.perf_counter(), time.thread_time()
            analysis = reader.read(frame)
            busy_ms = (time.perf_counter() - started) * 1000
            self.stats.charge("analysis", cpu)
        except Exception as exc:  # the video must outlive any model failure
            self._report_error("analysis failed, video continues without fresh overlays", exc)
            self._stop.wait(0.5)  # do not spin on a model that keeps failing
            return
        self.stats.error = ""
        self.stats.analyses += 1
        self.stats.faces = len(analysis.faces)
        self.stats.analysis_times.append(time.monotonic())
        self.stats.analysis_ms.append(busy_ms)
        self.analyses.put(analysis)
        if self.speaking is not None:
            self.speaking.offer(analysis, frame)
        if self.store.get().body_cues:
            self._read_body(analysis, frame)
        if self.on_analysis:
            self.on_analysis(analysis, frame)

    def _read_body(self, analysis: Analysis, frame: Frame) -> None:
        """Body-language cues at their own rate (the reader runs its pose model a few times a second)."""
        try:
            if self._cue_reader is None:
                self._cue_reader = self.make_cue_reader()
            self.body_cues.put(self._cue_reader.read(frame, analysis.faces))
        except Exception as exc:  # the cues are an extra: their failure costs only the cues
            self._report_error("body cues failed", exc)

    def _report_error(self, what: str, exc: Exception) -> None:
        message = f"{type(exc).__name__}: {exc}".splitlines()[0]
        if message != self.stats.error:
            log.error("%s: %s", what, message)
            log.debug("%s", what, exc_info=exc)  # the traceback, with --debug
            if self.on_error:
                self.on_error(f"{what}: {message}")
        self.stats.error = message
