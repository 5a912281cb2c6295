"""The tray app's engine: settings -> source, face reader, sink -> the live pipeline."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable

from fercam.live import LiveRunner, one_opencv_thread
from fercam.pipeline import make_live_reader
from fercam.settings import Settings, SettingsStore
from fercam.sinks import SinkError, open_sink
from fercam.sources import VideoFileSource, open_source

log = logging.getLogger(__name__)


def microphone_problem() -> str | None:
    """Why the "Voice" toggle cannot work here (None when there is an input device); menus disable it then."""
    try:
        import sounddevice

        sounddevice.query_devices(kind="input")
    except ImportError:
        return "needs sounddevice"
    except OSError:
        return "no PortAudio: apt install libportaudio2"
    except Exception:  # sounddevice.PortAudioError or ValueError: no input device
        return "no microphone found"
    return None


class PreviewOnlySink:
    """Where the video goes when the virtual camera cannot open: nowhere but the window's preview."""

    closed = False

    def send(self, image) -> None:
        pass

    def close(self) -> None:
        pass


class App:
    """The tray app's engine: one live pipeline, restarted when the camera or output changes.

    `on_no_driver` runs when the virtual camera cannot open (it opens the FER Cam window);
    the video then still flows to the window's preview. HighGUI is never used here: the tray
    owns the main thread and OpenCV windows must live on it.
    """

    def __init__(
        self,
        store: SettingsStore,
        *,
        sink_spec: str = "virtualcam",
        vcam_backend: str | None = None,
        source_spec: str | None = None,
        notify: Callable[[str], None] = log.warning,
        on_no_driver: Callable[[], None] | None = None,
    ) -> None:
        self.store, self.sink_spec, self.vcam_backend = store, sink_spec, vcam_backend
        self.source_spec = source_spec
        self.notify, self.on_no_driver = notify, on_no_driver
        self.notices: deque[str] = deque(maxlen=8)  # whole, for the window's status panel
        self.runner: LiveRunner | None = None
        self._thread: threading.Thread | None = None
        self._listener = None  # the microphone, while "Voice" is on
        self._sink, self._sink_format = None, None  # kept across restarts while the output format stays
        store.subscribe(self._sync_voice)

    def status_line(self) -> str:
        if self.runner is None or self.runner.stopped:
            return "stopped"
        return self.runner.stats.status_line()

    def report(self, message: str) -> None:
        self.notices.append(message)
        self.notify(message)

    def start(self) -> None:
        settings = self.store.get()
        try:
            source = self._open_source(settings)
            sink = self._output(settings)
        except (ValueError, SinkError) as exc:
            self.report(str(exc))
            return
        self.runner = LiveRunner(source, sink, self.store, make_live_reader, on_error=self.report)
        self._sync_voice(settings)
        self._thread = threading.Thread(target=self._run, args=(self.runner, source), daemon=True)
        self._thread.start()

    def _sync_voice(self, settings: Settings) -> None:
        """Open or close the microphone to follow the "Voice" toggle; its failure never stops the video."""
        if settings.voice and self._listener is None:
            try:
                from fercam.voice.classifier import MicrophoneListener

                self._listener = MicrophoneListener().start()
            except (ImportError, ValueError, RuntimeError, OSError) as exc:
                self.store.update(voice=False)  # the menu and the page must not claim it is on
                self.report(f"voice is off: {exc}")
        elif not settings.voice and self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self.runner is not None:
            self.runner.voice_probs = self._listener.latest if self._listener is not None else None

    def _output(self, settings: Settings):
        """The sink, reopened only when the output's format changes: a new camera keeps the same recording
        (a file letterboxes every size into its own), a new size or rate reopens the virtual camera."""
        same = self.sink_spec.startswith("file:") or self._sink_format == (
            settings.width,
            settings.height,
            settings.fps,
        )
        if self._sink is not None and same:
            return self._sink
        self._close_output()
        self._sink, self._sink_format = self._open_sink(settings), (settings.width, settings.height, settings.fps)
        return self._sink

    def _close_output(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None

    def _open_sink(self, settings: Settings):
        try:
            return open_sink(
                self.sink_spec,
                width=settings.width,
                height=settings.height,
                fps=settings.fps,
                vcam_backend=self.vcam_backend,
            )
        except SinkError as exc:
            if self.sink_spec != "virtualcam" or self.on_no_driver is None:
                raise
            self.report(f"{exc}. The FER Cam window shows the video meanwhile.")
            self.on_no_driver()
            return PreviewOnlySink()

    def _open_source(self, settings: Settings):
        one_opencv_thread()
        spec = self.source_spec or settings.camera
        source = open_source(spec, realtime=True, width=settings.width, height=settings.height, fps=settings.fps)
        if isinstance(source, VideoFileSource):
            source.loop = True  # a clip as the camera keeps playing
        return source

    def _run(self, runner: LiveRunner, source) -> None:
        try:
            runner.run()
        except Exception as exc:  # report in the tray rather than dying silently
            self.report(f"video stopped: {exc}")
        finally:
            source.close()

    def stop(self, *, keep_output: bool = False) -> None:
        """Stop the video; the output (a recording, the virtual camera) is finished unless `keep_output`."""
        if self.runner is not None:
            self.runner.stop()
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._listener is not None:
            self._listener.stop()
        self.runner, self._thread, self._listener = None, None, None
        if not keep_output:
            self._close_output()

    def restart(self) -> None:
        self.stop(keep_output=True)
        self.start()
