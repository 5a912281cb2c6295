"""The tray app's engine: settings -> source, face reader, sink -> the live pipeline, and the one place that
changes settings (`App.apply`)."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

from fercam.contracts import Closing, SourceError
from fercam.errors import one_line
from fercam.live import LiveRunner, set_up_for_live_threads
from fercam.live.clocks import FrameClock
from fercam.pipeline import make_live_reader
from fercam.settings import CAMERA_HELP, Settings, SettingsStore
from fercam.sinks import SinkError, open_with_fallback
from fercam.sources import SOURCES, VideoFileSource, open_source

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


class PreviewOnlySink(Closing):
    """Where the video goes when the virtual camera cannot open: nowhere but the window's preview."""

    closed = False

    def send(self, image) -> None:
        pass

    def close(self) -> None:
        pass


class App:
    """The tray app's engine: one live pipeline, moved to a new source when the camera or output changes.

    Every change of settings goes through `apply`, one at a time: so a move waits for the previous one,
    and the output (a recording's encoder, the virtual camera) is fed by one video thread only.
    `open_window` runs when the user must see the FER Cam window: the virtual camera cannot open (the video then
    still flows to the window's preview), or no video starts at all (no webcam, say: the window says why).
    HighGUI is never used here: the tray owns the main thread and OpenCV windows must live on it.
    """

    def __init__(
        self,
        store: SettingsStore,
        *,
        sink_spec: str = "virtualcam",
        vcam_backend: str | None = None,
        source_spec: str | None = None,
        notify: Callable[[str], None] = log.warning,
        open_window: Callable[[], None] | None = None,
        microphone: str | None = None,
    ) -> None:
        self.store, self.sink_spec, self.vcam_backend = store, sink_spec, vcam_backend
        self.microphone = microphone  # a recording whose sound stands in for the microphone (`--microphone`)
        self.source_spec = source_spec
        self.notify, self.open_window = notify, open_window
        self.notices: deque[str] = deque(maxlen=8)  # whole, for the window's status panel
        self._video_notices: set[str] = set()  # why a video did not start or change: stale once one plays
        self.runner: LiveRunner | None = None
        self._thread: threading.Thread | None = None
        self._playing: str | None = None  # the source the video runs on, as the user named it
        self._lock = threading.RLock()  # one change, start or stop at a time
        self._finished = False  # stopped for good: the app is quitting
        self._listener = None  # the microphone and who speaks (`LiveHearing`), while "Voice" is on
        self._sink, self._sink_format = None, None  # kept across restarts while the output format stays
        self.clock = FrameClock()  # the frames' capture times, which time a recording across every restart
        store.subscribe(self._sync_voice)
        if store.problems:  # said on stderr at load; the window shows it too
            self.notices.append(f"settings file: {'; '.join(store.problems)}; defaults used, the old file backed up")

    def status_line(self) -> str:
        if self.runner is None or self.runner.stopped:
            return "stopped"
        return self.runner.stats.status_line()

    def report(self, message: str, *, about_video: bool = False) -> None:
        """A notice, in the window and as the tray's notification; one `about_video` goes once a video plays."""
        self.notices.append(message)
        if about_video:
            self._video_notices.add(message)
        self.notify(message)

    def _take_down_video_notices(self) -> None:
        kept = [notice for notice in self.notices if notice not in self._video_notices]
        self.notices, self._video_notices = deque(kept, maxlen=self.notices.maxlen), set()  # one swap: readers

    def start(self) -> None:
        """The video on the saved settings; what keeps it from starting is reported, never raised."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return  # already running: the output must never have two feeders
            settings = self.store.get()
            spec = self.source_spec or settings.camera
            try:
                self._launch(spec, *self._open(settings, spec))
            except ValueError as exc:
                self.report(str(exc), about_video=True)
                if self.open_window is not None:
                    self.open_window()  # a notification alone is easily missed, and some trays cannot show one

    def apply(self, changes: dict) -> Settings:
        """Change settings: checked against the schema, tried, and only then saved. A change that fails raises
        ValueError (one line) and leaves the video, its output and the saved settings as they were."""
        with self._lock:
            if self._finished:
                raise ValueError("FER Cam is quitting")
            current = self.store.get()
            wanted = current.checked(changes)
            chosen = "camera" in changes  # the window's or the tray's camera replaces --source
            spec = changes["camera"] if chosen else self.source_spec or current.camera
            resized = (wanted.width, wanted.height, wanted.fps) != (current.width, current.height, current.fps)
            moved = None
            if (chosen and spec != self._playing) or (resized and self._playing is not None):
                moved = self._move(wanted, spec, as_setting=chosen or self.source_spec is None)
            settings = self.store.update(**changes)  # saved once it works
            if chosen:
                self.source_spec = None
            if moved:
                self._launch(spec, *moved)
            return settings

    def _move(self, settings: Settings, spec: str, *, as_setting: bool) -> tuple:
        """The source and output for `settings` and `spec`, with the old video stopped. The new source opens
        while the old video still runs, unless both are the same webcam; if anything fails, ValueError, with
        the old video running again."""
        current, playing = self.store.get(), self._playing
        same_webcam = spec == playing and spec.isdigit()  # a webcam opens once: let go of it first
        if same_webcam:
            self._stop_video()
        try:
            source = self._open_source(settings, spec, as_setting=as_setting)
        except ValueError:
            if same_webcam:
                self._relaunch(current, playing)
            raise
        self._stop_video()  # its thread has ended: the output never has two feeders
        try:
            return source, self._output(settings)
        except SinkError as exc:
            source.close()
            self._relaunch(current, playing)
            raise ValueError(str(exc)) from None

    def _relaunch(self, settings: Settings, spec: str | None) -> None:
        """The video as it was before a change that failed (nothing, if it was stopped)."""
        if spec is None:
            return
        try:
            self._launch(spec, *self._open(settings, spec))
        except ValueError as exc:
            self.report(str(exc), about_video=True)

    def _open(self, settings: Settings, spec: str) -> tuple:
        source = self._open_source(settings, spec)
        try:
            return source, self._output(settings)
        except SinkError as exc:
            source.close()
            raise ValueError(str(exc)) from None

    def _launch(self, spec: str, source, sink) -> None:
        self.runner = LiveRunner(source, sink, self.store, make_live_reader, on_error=self.report, clock=self.clock)
        self._playing = spec
        self._take_down_video_notices()
        self._sync_voice(self.store.get())
        self._thread = threading.Thread(target=self._run, args=(self.runner, source), daemon=True)
        self._thread.start()

    def _sync_voice(self, settings: Settings) -> None:
        """Open or close the microphone to follow the "Voice" toggle; its failure never stops the video."""
        if settings.voice and self._listener is None:
            try:
                from fercam.live.speaking import LiveHearing
                from fercam.voice.clip_microphone import ClipMicrophone

                clip = ClipMicrophone(self.microphone) if self.microphone else None
                self._listener = LiveHearing(clip).start()
            except (ImportError, ValueError, RuntimeError, OSError) as exc:
                self.store.update(voice=False)  # the menu and the page must not claim it is on
                self.report(f"voice is off: {exc}")
        elif not settings.voice and self._listener is not None:
            self._listener.stop()
            self._listener = None
        if self.runner is not None and self._listener is not None:
            self._listener.attach(self.runner)
        elif self.runner is not None:
            self.runner.voice_probs = self.runner.speaking = None

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
        def preview_only(error: SinkError) -> PreviewOnlySink:
            self.report(f"{error}. The FER Cam window shows the video meanwhile.")
            self.open_window()
            return PreviewOnlySink()

        return open_with_fallback(
            self.sink_spec,
            preview_only if self.open_window is not None else None,
            width=settings.width,
            height=settings.height,
            fps=settings.fps,
            vcam_backend=self.vcam_backend,
            media_time=self.clock,
        )

    def _open_source(self, settings: Settings, spec: str, *, as_setting: bool = False):
        """The source `spec` names. As a setting (the window can change it), a file must be a regular one (a FIFO
        or a device could block the open) or a folder of photos, and a missing or unreadable one gets the same
        words: no notice tells which files exist."""
        set_up_for_live_threads()
        kind = SOURCES.kind_of(spec).name
        a_file = as_setting and kind not in ("camera", "stream")
        try:
            if a_file and not (Path(spec).is_file() or (kind == "images" and Path(spec).is_dir())):
                raise SourceError(spec)
            source = open_source(spec, realtime=True, width=settings.width, height=settings.height, fps=settings.fps)
        except (ValueError, OSError) as exc:  # OSError: a name too long for the file system, say
            why = f"camera: cannot play {spec!r}; it must be {CAMERA_HELP}" if a_file else one_line(exc)
            raise ValueError(why) from None
        if isinstance(source, VideoFileSource):
            source.loop = True  # a clip as the camera keeps playing
        return source

    def _run(self, runner: LiveRunner, source) -> None:
        try:
            runner.run()
        except Exception as exc:  # report in the tray rather than dying silently
            self.report(f"video stopped: {exc}", about_video=True)
        finally:
            source.close()

    def _stop_video(self) -> None:
        """Stop the video and wait for its thread to end (each step of it waits a second at most)."""
        if self.runner is not None:
            self.runner.stop()
        if self._thread is not None:
            self._thread.join()
        self.runner, self._thread, self._playing = None, None, None

    def stop(self) -> None:
        """Stop the video and finish the output (a recording, the virtual camera); changes still waiting for
        `apply` are refused from now on."""
        with self._lock:
            self._finished = True
            self._stop_video()
            if self._listener is not None:
                self._listener.stop()
                self._listener = None
            self._close_output()
