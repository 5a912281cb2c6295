"""Container-level work with PyAV: does a file have sound, and keep it in the annotated video."""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)


def has_audio(path: str | Path) -> bool:
    """True when the file opens and has at least one audio stream."""
    import av

    try:
        with av.open(str(path)) as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError):
        return False


def copy_audio_track(original: str | Path, video_file: Path, *, until_s: float | None = None) -> bool:
    """Rewrite `video_file` with the original's first audio stream added, packets copied as they are;
    `until_s` ends the sound there (a video cut short by an interrupt must not carry the whole track)."""
    import av

    muxed = video_file.with_suffix(".muxing.mp4")
    try:
        with av.open(str(video_file)) as video, av.open(str(original)) as sound, av.open(str(muxed), "w") as out:
            streams = {video.streams.video[0]: None, sound.streams.audio[0]: None}
            for stream in streams:
                streams[stream] = out.add_stream_from_template(stream)
            for container, stream in ((video, video.streams.video[0]), (sound, sound.streams.audio[0])):
                for packet in container.demux(stream):
                    if until_s is not None and packet.pts is not None and packet.pts * packet.time_base >= until_s:
                        continue
                    if packet.dts is not None:
                        packet.stream = streams[stream]
                        out.mux(packet)
        os.replace(muxed, video_file)
        return True
    except (av.FFmpegError, OSError, ValueError) as exc:
        log.warning("kept the video without sound: %s", exc)
        muxed.unlink(missing_ok=True)
        return False
