"""Container-level work with PyAV: the one reader of video files (frames with their presentation times),
does a file have sound, and keep it in the annotated video."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from fercam.errors import os_reason as _reason

log = logging.getLogger(__name__)

FALLBACK_FPS = 25.0  # FFmpeg's own guess for a raw stream that carries no rate
# Up to 1080p a video decodes on one thread: FFmpeg's frame threads cost CPU to hand each frame over, and hold
# frames back (H.264, AMD EPYC: 596x336 0.71 ms of CPU a frame on one thread, 1.03 on three; 1080p 4.3 against
# 5.4, still 4.4 ms of wall time a frame). Larger pictures need the threads to keep up with 30 fps.
ONE_THREAD_PIXELS = 1920 * 1088


class MediaError(ValueError):
    """A file that cannot be decoded; the message says what is wrong with it."""


class NoVideoError(MediaError):
    """A file that opens but has no video track (`has_sound` tells whether its voice can still be analysed)."""

    def __init__(self, message: str, *, has_sound: bool) -> None:
        super().__init__(message)
        self.has_sound = has_sound


def ffmpeg_name(path: str | Path) -> str:
    """What to give FFmpeg for `path`: a URL as it is, a file by its absolute path (`file:colon.mp4` or
    `pipe:1.mp4` would otherwise be read as FFmpeg protocols)."""
    text = str(path)
    return text if "://" in text else str(Path(text).absolute())


class VideoReader:
    """The first video stream of a file (or URL), decoded in order, each frame with its presentation time.

    Times are seconds from the start of the container (so they line up with its sound), taken from
    each frame's pts: variable frame rates, 0.5 fps time-lapses and GIF delays come out as the file
    says. Nothing seeks on open, so MPEG-TS/PS keep their first frames; a raw elementary stream
    (.h264), which has no times, is timed by its declared rate. The first frame is decoded on open:
    a file that cannot give one is refused there, with what was wrong.
    """

    def __init__(self, path: str | Path, *, timeout_s: float | None = None) -> None:
        """`timeout_s` bounds each wait for the network (opening, then each read) for a URL: FFmpeg's HTTP
        waits for ever, and a stalled server would hold the video thread."""
        import av
        from av.video.reformatter import VideoReformatter

        self.path = str(path)
        try:
            timeout = None if timeout_s is None else (timeout_s, timeout_s)
            self._container = av.open(ffmpeg_name(self.path), timeout=timeout)
        except (av.FFmpegError, OSError, UnicodeDecodeError) as exc:
            raise MediaError(f"cannot read video: {path} (not a video FFmpeg can read: {_reason(exc)})") from exc
        if not self._container.streams.video:
            has_sound = bool(self._container.streams.audio)
            self._container.close()
            what = "only sound" if has_sound else "no video or sound track"
            raise NoVideoError(f"{path} has no video track ({what})", has_sound=has_sound)
        self._stream = self._container.streams.video[0]
        codec = self._stream.codec_context
        if codec.width * codec.height > ONE_THREAD_PIXELS:
            self._stream.thread_type = "AUTO"
        else:
            codec.thread_count = 1
        self._to_bgr = VideoReformatter()  # one pixel converter for the whole stream (`upright`)
        start = self._container.start_time
        self._origin = start / 1e6 if start is not None else 0.0
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = float(rate) if rate else FALLBACK_FPS
        self.failed = ""  # why decoding stopped before the end of the file, if it did
        self.skipped: list[float | None] = []  # the times of the damaged packets decoding went past
        self._frames = self._decode()
        self._first = next(self._frames, None)
        if self._first is None:
            self._container.close()
            reason = f": {self.failed}" if self.failed else ""
            raise MediaError(f"cannot read video: {path} (no frame decodes{reason})")

    @property
    def size(self) -> tuple[int, int]:
        return self._first[0].shape[1], self._first[0].shape[0]

    @property
    def declared_frames(self) -> int | None:
        """The frame count the container's index declares (MP4, AVI), else None."""
        return self._stream.frames or None

    @property
    def duration(self) -> float | None:
        """The video stream's own duration in seconds as the container declares it, else None."""
        stream = self._stream
        return float(stream.duration * stream.time_base) if stream.duration and stream.time_base else None

    @property
    def frame_count(self) -> int | None:
        """Declared, or estimated from a duration (for a progress bar); None when unknown."""
        container = self._container.duration / 1e6 if self._container.duration else None
        duration = self.duration or container
        return self.declared_frames or (max(1, round(duration * self.fps)) if duration else None)

    def _decode(self) -> Iterator[tuple[np.ndarray, float | None]]:
        """Packet by packet, as FFmpeg does: a damaged packet is skipped (and noted in `skipped`), the
        decoder goes on at the next one it can use; a demuxer that fails (a cut file) ends it. Damaged packets
        that no good one follows are not noted: they are where a cut file broke off, and a short file says so."""
        import av

        trailing: list[float | None] = []  # damaged packets since the last good one
        try:
            for packet in self._container.demux(self._stream):
                try:
                    frames = packet.decode()
                except av.InvalidDataError:
                    time = None if packet.pts is None else float(packet.pts * packet.time_base) - self._origin
                    trailing.append(time)
                    continue
                if trailing and packet.size:  # not the empty packet that drains the decoder at the end
                    self.skipped += trailing
                    trailing = []
                for frame in frames:
                    time = frame.time
                    yield upright(frame, self._to_bgr), None if time is None else time - self._origin
        except (av.FFmpegError, OSError) as exc:  # a cut file: what decoded stays
            self.failed = _reason(exc)

    def damage(self) -> str:
        """Where decoding skipped damaged data, in words ("" when it skipped none)."""
        if not self.skipped:
            return ""
        times = [t for t in self.skipped if t is not None]
        where = f" between {min(times):.2f} s and {max(times):.2f} s" if times else ""
        return f"skipped {len(self.skipped)} damaged packet(s){where}"

    def frames(self) -> Iterator[tuple[np.ndarray, float | None]]:
        """(BGR image, seconds from the start or None when the file carries no times), from where it is."""
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        yield from self._frames

    def rewind(self) -> None:
        self._container.seek(0)
        self.failed, self.skipped = "", []
        self._frames = self._decode()

    def close(self) -> None:
        self._container.close()


def upright(frame, reformatter) -> np.ndarray:
    """A decoded frame as BGR, turned as its display matrix says (a phone stores its video sideways and
    flags the turn): what players show, so faces stand upright for the detector and the annotated video.

    `reformatter` (a `VideoReformatter` kept for the stream) converts it on this thread: `to_ndarray` alone
    builds a new scaler for every frame, which starts and stops two slice threads each time (a 596x336 clip:
    0.35 ms of CPU a frame against 0.1 ms, the same pixels)."""
    image = reformatter.reformat(frame, format="bgr24", threads=1).to_ndarray()
    turns = round(frame.rotation / 90) % 4  # counter-clockwise quarter turns
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def has_audio(path: str | Path) -> bool:
    """True when the file opens and has at least one audio stream."""
    import av

    try:
        with av.open(ffmpeg_name(path)) as container:
            return bool(container.streams.audio)
    except (av.FFmpegError, OSError):
        return False


def count_video_packets(path: str | Path) -> int:
    """The video frames a file holds whole (one packet each; a packet cut off by the end of the file, as a
    full disk leaves it, is flagged corrupt and not counted); 0 when it cannot be opened."""
    import av

    try:
        with av.open(ffmpeg_name(path)) as container:
            return sum(1 for p in container.demux(video=0) if p.size and not p.is_corrupt)
    except (av.FFmpegError, OSError, IndexError):
        return 0


# Sound codecs an MP4 carries that players play; anything else (PCM from a .wav/.mov/.mkv) becomes AAC.
MP4_SOUND = {"aac", "mp3", "alac", "opus", "ac3", "eac3"}


def copy_audio_track(
    original: str | Path, video_file: Path, *, until_s: float | None = None, video_start_s: float = 0.0
) -> bool:
    """Rewrite `video_file` with the original's first audio stream added, in step with the video (both
    timed from the start of the original's container: `video_file` starts at 0 and its first frame was at
    `video_start_s` there); packets are copied when MP4 players know the codec, else the sound is encoded
    as AAC. `until_s` ends video and sound there (a run cut short by an interrupt keeps every output to the
    same point)."""
    import av

    muxed = video_file.with_suffix(".muxing.mp4")
    try:
        with (
            av.open(ffmpeg_name(video_file)) as video,
            av.open(ffmpeg_name(original)) as sound,
            av.open(ffmpeg_name(muxed), "w") as out,
        ):
            picture, voice = video.streams.video[0], sound.streams.audio[0]
            copied = voice.codec_context.name in MP4_SOUND
            streams = out.add_stream_from_template(picture), _sound_stream(out, voice, copied)  # all before muxing
            _copy(video, picture, streams[0], out, until_s, origin=-video_start_s)
            origin = sound.start_time / 1e6 if sound.start_time is not None else 0.0
            (_copy if copied else _encode_aac)(sound, voice, streams[1], out, until_s, origin)
        os.replace(muxed, video_file)
        return True
    except (av.FFmpegError, OSError, ValueError, IndexError) as exc:
        log.warning("kept the video without sound: %s", _reason(exc))
        muxed.unlink(missing_ok=True)
        return False


def _copy(container, stream, target, out, until_s: float | None, origin: float) -> None:
    """Packets as they are, shifted so the file's start is at 0, up to `until_s`."""
    shift = round(origin / stream.time_base) if stream.time_base else 0
    for packet in container.demux(stream):
        if packet.dts is None:  # the demuxer's empty end-of-stream packet
            continue
        if until_s is not None and packet.pts is not None and (packet.pts - shift) * packet.time_base >= until_s:
            continue
        packet.pts, packet.dts = packet.pts - shift if packet.pts is not None else None, packet.dts - shift
        packet.stream = target
        out.mux(packet)


def _sound_stream(out, stream, copied: bool):
    if copied:
        return out.add_stream_from_template(stream)
    target = out.add_stream("aac", rate=stream.rate, layout="mono" if stream.channels == 1 else "stereo")
    target.bit_rate = 128_000
    return target


def _encode_aac(container, stream, target, out, until_s: float | None, origin: float) -> None:
    """Decode and encode as AAC (the encoder resamples to its own sample format)."""
    for frame in container.decode(stream):
        time = (frame.time or 0.0) - origin
        if until_s is not None and time >= until_s:
            break
        frame.pts, frame.time_base = max(0, round(time * stream.rate)), Fraction(1, stream.rate)
        for packet in target.encode(frame):
            out.mux(packet)
    for packet in target.encode(None):
        out.mux(packet)
