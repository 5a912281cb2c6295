"""The tray app's engine: settings -> source, face reader, sink -> the live pipeline."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from fercam.apps.headless import open_output
from fercam.live import LiveRunner
from fercam.pipeline import make_live_reader
from fercam.settings import Settings, SettingsStore
from fercam.sinks import SinkError
from fercam.sources import VideoFileSource, open_source

log = logging.getLogger(__name__)


class App:
    """The tray app's engine: one live pipeline, restarted when the camera or output changes."""

    def __init__(
        self,
        store: SettingsStore,
        *,
        sink_spec: str = "virtualcam",
        vcam_backend: str | None = None,
        source_spec: str | None = None,
        notify: Callable[[str], None] = log.warning,
    ) -> None:
        self.store, self.sink_spec, self.vcam_backend = store, sink_spec, vcam_backend
        self.source_spec = source_spec
        self.notify = notify
        self.runner: LiveRunner | None = None
        self._thread: threading.Thread | None = None
        self._listener = None  # the microphone, while "Voice" is on
        store.subscribe(self._sync_voice)

    def status_line(self) -> str:
        if self.runner is None or self.runner.stopped:
            return "stopped"
        return self.runner.stats.status_line()

    def start(self) -> None:
        settings = self.store.get()
        try:
            source = self._open_source(settings)
            sink = open_output(self.sink_spec, settings, vcam_backend=self.vcam_backend, notify=self.notify)
        except (ValueError, SinkError) as exc:
            self.notify(str(exc))
            return
        self.runner = LiveRunner(source, sink, self.store, make_live_reader)
        self._sync_voice(settings)
        self._thread = threading.Thread(target=self._run, args=(self.runner, source, sink), daemon=True)
        self._thread.start()

    def _sync_voice(self, settings: Settings) -> None:
        """Open or close the microphone to follow the "Voice" toggle; its failure never stops the video."""
        if settings.voice and self._listener is None:
            try:
                from fercam.voice.classifier import MicrophoneListener

                self._listener = MicrophoneListener().start()
            except (ImportError, ValueError, RuntimeError, OSError) as exc:
                self.notify(f"voice is off: {exc}")
        elif not settings.voice and self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self.runner is not None:
            self.runner.voice_probs = self._listener.latest if self._listener is not None else None

    def _open_source(self, settings: Settings):
        spec = self.source_spec or settings.camera
        source = open_source(spec, realtime=True, width=settings.width, height=settings.height, fps=settings.fps)
        if isinstance(source, VideoFileSource):
            source.loop = True  # a clip as the camera keeps playing
        return source

    def _run(self, runner: LiveRunner, source, sink) -> None:
        try:
            runner.run()
        except Exception as exc:  # report in the tray rather than dying silently
            self.notify(f"video stopped: {exc}")
        finally:
            source.close()
            sink.close()

    def stop(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.stop()
        self.runner, self._thread, self._listener = None, None, None

    def restart(self) -> None:
        self.stop()
        self.start()
