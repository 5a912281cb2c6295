"""Audio in: decode any common audio or video file to mono float32, resample, cut into windows.

PyAV (FFmpeg in its wheels) decodes wav/flac/mp3/ogg and the sound of mp4/mkv/... the same way
on Linux, Windows and macOS, offline, without a system FFmpeg. Live input is `fercam.voice.microphone`;
where the speech is, `fercam.voice.speech`.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from fercam.errors import os_reason

log = logging.getLogger(__name__)

DEFAULT_RATE = 16000
SILENCE_DB = -50.0  # frames quieter than this (dBFS) are not speech; room noise is ~-60 dBFS


class AudioError(ValueError):
    """Audio that cannot be used: a missing, corrupt or empty file, no sound track, or a bad array."""


BLOCK_S = 1.0  # a streamed track comes in blocks this long: what a stop request may wait for


class AudioFile:
    """The first audio track of a file, decoded and resampled block by block to mono float32 at `sample_rate`:
    memory holds one block, however long the recording. `offset` is where the track starts in the
    container (seconds), so its times line up with the video's."""

    def __init__(self, path: str | Path, sample_rate: int = DEFAULT_RATE) -> None:
        import av

        self.path, self.sample_rate = Path(path), sample_rate
        if not self.path.is_file():
            raise AudioError(f"{self.path}: no such file")
        if self.path.stat().st_size == 0:
            raise AudioError(f"{self.path}: the file is empty (0 bytes)")
        try:
            self._container = av.open(str(self.path.absolute()))  # `file:x.wav` is a name here, not a protocol
        except av.FFmpegError as exc:
            raise AudioError(f"{self.path}: not a readable audio or video file ({os_reason(exc)})") from exc
        if not self._container.streams.audio:
            self._container.close()
            raise AudioError(f"{self.path}: has no audio track")
        stream = self._container.streams.audio[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
        origin = self._container.start_time / 1e6 if self._container.start_time is not None else 0.0
        self.offset = max(0.0, start - origin)
        self.skipped_s = 0.0  # damaged sound decoding went past, as silence
        if stream.duration and stream.time_base:
            self.duration: float | None = float(stream.duration * stream.time_base)
        else:
            self.duration = self._container.duration / 1e6 if self._container.duration else None
        # AAC in MP4/MOV: the edit list declares the length; what decodes past it is the encoder's padding
        padded = stream.codec_context.name == "aac" and "mp4" in self._container.format.name
        self._end = self.offset + self.duration if padded and stream.duration else None

    def blocks(self, *, until_s: float | None = None, block_s: float = BLOCK_S) -> Iterator[np.ndarray]:
        """The samples in blocks of `block_s` (the last one shorter); `until_s` (container time) ends them there."""
        import av

        stream = self._container.streams.audio[0]
        resampler = av.AudioResampler(format="flt", layout="mono", rate=self.sample_rate)
        size = round(block_s * self.sample_rate)
        ends = [t for t in (until_s, self._end) if t is not None]
        left = max(0, round((min(ends) - self.offset) * self.sample_rate)) if ends else None
        pending: list[np.ndarray] = []
        held = 0
        try:
            for frame in itertools.chain(self._decode(stream), [None]):  # None: flush the resampler
                for out in resampler.resample(frame):
                    pending.append(np.clip(out.to_ndarray().reshape(-1), -1.0, 1.0))
                    held += len(pending[-1])
                while held >= size or (frame is None and held):
                    joined = np.concatenate(pending)
                    block, pending, held = joined[:size], [joined[size:]], len(joined) - min(size, len(joined))
                    if left is not None:
                        block, left = block[:left], left - min(left, len(block))
                    if len(block):
                        yield block
                    if left == 0:
                        return
        except av.FFmpegError as exc:
            raise AudioError(f"{self.path}: the sound cannot be decoded ({os_reason(exc)})") from exc

    def _decode(self, stream) -> Iterator:
        """Packet by packet, as FFmpeg does: a damaged packet becomes silence of its length (noted in
        `skipped_s`), so the sound after it keeps its time."""
        import av

        for packet in self._container.demux(stream):
            try:
                yield from packet.decode()
            except av.InvalidDataError:
                seconds = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else 0.0
                self.skipped_s += seconds
                if seconds:
                    yield _silence(stream, seconds)

    def close(self) -> None:
        self._container.close()

    def __enter__(self) -> AudioFile:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def _silence(stream, seconds: float):
    """`seconds` of silence in the decoder's own format, layout and rate (what the resampler was set up for)."""
    import av

    context = stream.codec_context
    frame = av.AudioFrame(format=context.format.name, layout=context.layout.name, samples=round(seconds * context.rate))
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = context.rate
    return frame


def load_audio(path: str | Path, sample_rate: int = DEFAULT_RATE) -> np.ndarray:
    """The first audio track of `path` as mono float32 in -1..1 at `sample_rate` (all of it in memory)."""
    with AudioFile(path, sample_rate) as audio:
        blocks = list(audio.blocks())
    if not blocks:
        raise AudioError(f"{path}: the audio track is empty")
    return np.concatenate(blocks)


def to_float(samples: np.ndarray) -> np.ndarray:
    """int16 or float samples (any shape that is mono) -> float32 in -1..1."""
    samples = np.asarray(samples)
    if samples.ndim == 2 and 1 in samples.shape:
        samples = samples.reshape(-1)
    if samples.ndim != 1:
        raise AudioError(f"samples must be mono (a 1-D array), got shape {samples.shape}")
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    if not np.issubdtype(samples.dtype, np.floating):
        raise AudioError(f"samples must be int16 or float, not {samples.dtype}")
    return samples.astype(np.float32, copy=False)


def resample(samples: np.ndarray, from_rate: int, to_rate: int = DEFAULT_RATE) -> np.ndarray:
    """Mono samples (int16 or float) at `from_rate` -> float32 at `to_rate` (FFmpeg's swresample)."""
    samples = to_float(samples)
    if from_rate <= 0 or to_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    if from_rate == to_rate or samples.size == 0:
        return samples
    import av

    resampler = av.AudioResampler(format="flt", layout="mono", rate=to_rate)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples)[None, :], format="flt", layout="mono")
    frame.sample_rate = from_rate
    chunks = [out.to_ndarray().reshape(-1) for out in resampler.resample(frame) + resampler.resample(None)]
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def frame_db(samples: np.ndarray, sample_rate: int, frame_s: float = 0.02) -> np.ndarray:
    """Loudness (dBFS RMS) of consecutive `frame_s` frames."""
    samples = to_float(samples)
    size = max(1, round(frame_s * sample_rate))
    if len(samples) < size:
        samples = np.pad(samples, (0, size - len(samples)))
    count = len(samples) // size
    frames = samples[: count * size].reshape(count, size).astype(np.float64)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def sliding_windows(
    samples: np.ndarray, sample_rate: int, window_s: float = 2.0, hop_s: float = 0.5
) -> list[tuple[float, float, np.ndarray]]:
    """(start_s, end_s, segment) windows covering the whole recording; the last one ends at the end.

    A recording shorter than one window gives one (shorter) window; segments are views.
    """
    if window_s <= 0 or hop_s <= 0:
        raise ValueError(f"window_s and hop_s must be positive, got {window_s}, {hop_s}")
    size, hop, total = round(window_s * sample_rate), round(hop_s * sample_rate), len(samples)
    starts = list(range(0, max(total - size, 0) + 1, hop))
    if starts[-1] + size < total:
        starts.append(total - size)
    return [(s / sample_rate, min(s + size, total) / sample_rate, samples[s : s + size]) for s in starts]
