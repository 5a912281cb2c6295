"""The frame stage of `fercam analyze`: the offline pipeline over one input's frames, into its annotated
video and timelines, with a progress bar; `MediaClock` notes each frame's media time, where every output ends.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fercam.apps.stopping import check_stop
from fercam.pictures import ImageSource

if TYPE_CHECKING:
    from fercam.apps.analyze.results import InputResult, Options


class MediaClock:
    """The source as the frame loop reads it, noting each frame's media time: where the outputs end, and how
    long each analysed frame stands for."""

    def __init__(self, source) -> None:
        self.source, self.times = source, []
        self.name, self.fps, self.live, self.reconnects = source.name, source.fps, source.live, source.reconnects
        self.frame_count = source.frame_count

    def read(self):
        frame = self.source.read()
        if frame is not None:
            self.times.append(frame.timestamp)
        return frame

    def reopen(self) -> bool:
        return self.source.reopen()

    def close(self) -> None:
        self.source.close()

    def end_of(self, frames: int) -> float:
        """The media time at the end of the first `frames` frames."""
        return self.times[frames] if frames < len(self.times) else self.source.end_time


def run_frames(source, out_dir, writers, result: InputResult, options: Options, video: bool, position: int) -> int:
    """The offline pipeline over `source`; `result.frames` counts as it goes, so a Ctrl-C keeps the count."""
    from tqdm import tqdm

    from fercam.pipeline import Mode, ReaderConfig, make_face_reader, run_offline
    from fercam.settings import Settings
    from fercam.sinks import VideoFileSink

    mode = Mode.IMAGE if isinstance(source.source, ImageSource) else Mode.OFFLINE
    total = source.frame_count or None
    name = Path(source.name).stem[:20]
    bar = tqdm(total=total, unit="frame", desc=name, position=position, leave=True, disable=not options.progress)
    sinks = [_ProgressSink(bar, result)]
    if video:
        # each frame at its time in the source, as the clock noted it when the frame was read: frames are sent
        # one each, in the order they were read, while the reader may be a few frames ahead
        video = VideoFileSink(out_dir / "annotated.mp4", fps=source.fps, media_time=lambda: source.times[video.frames])
        sinks.insert(0, video)
    try:
        return run_offline(
            source,
            make_face_reader(ReaderConfig(detector=options.detector), mode),
            sinks,
            Settings(),  # the overlays as shipped: a recording's analysis is not the user's live view
            every=options.every,
            max_seconds=options.duration,
            on_analysis=lambda analysis, frame: [writer.write(analysis, frame) for writer in writers],
            before_frame=check_stop,  # a stop ends on a whole frame: the video, the timeline and the count agree
        )
    finally:
        for sink in sinks:
            sink.close()


class _ProgressSink:
    """Counts frames into a tqdm bar and the input's result."""

    closed = False

    def __init__(self, bar, result: InputResult) -> None:
        self.bar, self.result = bar, result

    def send(self, _image) -> None:
        self.bar.update(1)
        self.result.frames += 1

    def close(self) -> None:
        self.bar.close()
