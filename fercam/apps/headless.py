"""`fercam run --no-tray`: one source into one sink, in the running mode the two call for."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from contextlib import nullcontext

from fercam.devices import has_display
from fercam.events import EventLog, analysis_record
from fercam.live import LiveRunner, set_up_for_live_threads
from fercam.media import count_video_packets
from fercam.pipeline import Mode, ReaderConfig, make_face_reader, make_live_reader, run_offline
from fercam.recording import VideoFileSink
from fercam.settings import Settings, SettingsStore
from fercam.sinks import SINKS, SinkError, WindowSink, open_with_fallback, sink_parts
from fercam.sources import SOURCES, open_source

log = logging.getLogger(__name__)


def choose_mode(source_spec: str, sink_spec: str) -> Mode:
    """LIVE when the source or an output is live (a camera, a stream, the virtual camera, a window);
    IMAGE for pictures; OFFLINE (every frame, in order) for a video file into a file."""
    source_kind = SOURCES.kind_of(source_spec)
    if source_kind.live or any(kind.live for kind in _sink_kinds(sink_spec)):
        return Mode.LIVE
    return Mode.IMAGE if source_kind.name == "images" else Mode.OFFLINE


def _sink_kinds(spec: str) -> list:
    """The registered kinds of the sinks in `a+b`; an unknown one is reported when it is opened."""
    kinds = []
    for part in sink_parts(spec):
        try:
            kinds.append(SINKS.kind_of(part))
        except ValueError:
            pass
    return kinds


def open_output(
    spec: str,
    settings: Settings,
    *,
    vcam_backend: str | None = None,
    overwrite: bool = False,
    fps: float | None = None,
    file_size: tuple[int, int] | None = None,
    notify: Callable[[str], None] = log.warning,
):
    """The sink asked for; a missing virtual-camera driver falls back to a preview window if there is a display.
    `fps` (default: the settings') is the output's rate; `file_size` a file's frame size (None: the source's)."""

    def preview(error: SinkError) -> WindowSink:
        notify(f"{error}. Showing a preview window instead.")
        return WindowSink()

    return open_with_fallback(
        spec,
        preview if has_display() else None,
        width=settings.width,
        height=settings.height,
        fps=fps or settings.fps,
        vcam_backend=vcam_backend,
        overwrite=overwrite,
        file_size=file_size,
    )


def run_headless(
    source_spec: str,
    sink_spec: str,
    settings: Settings,
    *,
    mode: Mode | None = None,
    max_frames: int = 0,
    events: str | None = None,
    vcam_backend: str | None = None,
    overwrite: bool = False,
    size: tuple[int, int] | None = None,
    notify: Callable[[str], None] = log.warning,
    microphone: str | None = None,
) -> int:
    """Run until the source ends (or `max_frames`); returns the number of frames sent. `microphone`: a recording
    whose sound is heard as the microphone (LIVE mode), its voice drawn on the face that speaks.

    Offline, a file keeps the source's own rate (every frame is written, so any other rate would change
    its length) and size, or `size` when given; live outputs run at the settings' size and rate."""
    mode = mode or choose_mode(source_spec, sink_spec)
    if mode is Mode.LIVE:
        set_up_for_live_threads()
    offline = mode is not Mode.LIVE
    with (
        open_source(
            source_spec, realtime=not offline, width=settings.width, height=settings.height, fps=settings.fps
        ) as source,
        open_output(
            sink_spec,
            settings,
            vcam_backend=vcam_backend,
            overwrite=overwrite,
            fps=source.fps if offline else None,
            file_size=size if offline else None,
            notify=notify,
        ) as sink,
        EventLog(events, overwrite=overwrite) if events else nullcontext() as event_log,
    ):
        on_analysis = event_log.write if event_log else None
        if mode is Mode.LIVE:
            runner = LiveRunner(
                source, sink, SettingsStore(initial=settings), make_live_reader, on_analysis=on_analysis
            )
            return _run_live(runner, microphone, event_log, max_frames)
        # outside the frame loop: a model error is not a frame error
        reader = make_face_reader(ReaderConfig.from_settings(settings), mode)
        try:
            frames = run_offline(source, reader, [sink], settings, max_frames=max_frames, on_analysis=on_analysis)
        except SinkError as exc:
            if not isinstance(sink, VideoFileSink):
                raise
            sink.close()
            raise SinkError(f"{exc}; {_held(sink)}") from exc
        sink.close()  # the last fragment is written here: a full disk may still cut it
        if isinstance(sink, VideoFileSink) and count_video_packets(sink.path) < sink.frames:
            raise SinkError(f"{sink.path} could not be written whole ({_why_cut(sink.path)}); {_held(sink)}")
        return frames


def _run_live(runner: LiveRunner, microphone: str | None, event_log: EventLog | None, max_frames: int) -> int:
    """The live runner, with a recording's sound as its microphone when one is given (events then say who speaks)."""
    if microphone is None:
        return runner.run(max_frames=max_frames)
    from fercam.live.speaking import LiveHearing
    from fercam.speaking.heard import heard_fields
    from fercam.voice.clip_microphone import ClipMicrophone

    hearing = LiveHearing(ClipMicrophone(microphone))
    hearing.attach(runner)
    if event_log is not None:

        def write(analysis, _frame) -> None:
            per_face, extra = heard_fields(analysis, hearing.listener.latest(), hearing.speaking.now())
            event_log.write_record(analysis_record(analysis, per_face, **extra))

        runner.on_analysis = write
    hearing.start()
    try:
        return runner.run(max_frames=max_frames)
    finally:
        hearing.stop()


def _held(sink: VideoFileSink) -> str:
    """How many frames a file sink's file holds, said when writing it failed."""
    return f"it holds {count_video_packets(sink.path)} of the {sink.frames} frames sent"


def _why_cut(path) -> str:
    """Why a file's last writes failed when no write said so at once (they were made at close)."""
    full = shutil.disk_usage(path.parent).free < 64 * 1024  # a file system rounds up to its blocks
    return "no space left on the device" if full else "a write failed: a file-size limit?"
