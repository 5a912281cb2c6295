"""Who-is-speaking on 2x2 GRID galleries: per turn, each tile's mean `speaking` and whether the turn came out right,
the arrangement held out from tuning apart, plus the cost (docs/speaking.md). Needs ffmpeg and ../shared/media/grid.

    PYTHONPATH=. python tools/measure_speaking.py [--cache DIR] [--set window_s=2.0 ...]

The mouths are measured as `fercam analyze` measures them (`SpeakingReader` hands every frame to its
`SpeakingStream`). With `--cache` each gallery and its frames' boxes and mouths are kept, and a later run with the
same folder replays them through a `SpeakingStream` without the detector or the mesh: the attribution's options
(`--set`) are re-scored in seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from speaking_galleries import GRID, TURN_S, build_gallery  # noqa: E402

from fercam.live.speaking import MouthPace  # noqa: E402
from fercam.speaking.attribution import Speaking  # noqa: E402
from fercam.speaking.clip import SpeakingFrame, SpeakingReader, SpeakingStream  # noqa: E402
from fercam.types import Box  # noqa: E402

CLIPS = ["bbaf2n", "brbk7n", "id2_vcd_swwp2s", "lbax4n", "lbbc2a", "pwij3p", "sbia1a"]
STAGGERED = [0.0, 0.75, 1.5, 2.25]  # every tile talks, each a quarter of a clip after the last
HELD_OUT = 4  # the arrangement never tuned on: tiles lbbc2a, pwij3p, sbia1a, bbaf2n; brbk7n from off screen


def galleries() -> list[tuple[str, list[str], list[str | None], list[float] | None]]:
    """(name, tiles, sounds per turn, phases): every clip once as the voice from off screen."""
    found = []
    for shift in range(len(CLIPS)):
        order = CLIPS[shift:] + CLIPS[:shift]
        tiles, hidden = order[:4], order[4]
        found.append((f"still-{shift}", tiles, [tiles[0], tiles[1], None, tiles[3], hidden], None))
        found.append((f"alive-{shift}", tiles, [tiles[0], tiles[1], None, tiles[3], hidden], None))
        found.append((f"moving-{shift}", tiles, [tiles[2], hidden, tiles[0], tiles[3], tiles[1]], STAGGERED))
        found.append((f"in-phase-{shift}", tiles, [tiles[1], tiles[3], hidden, tiles[0], tiles[2]], [0.0] * 4))
    return found


def tile_of(box, width: float, height: float) -> int:
    cx, cy = box.center
    return int(cx >= width / 2) + 2 * int(cy >= height / 2)


def turn_means(frames, turns: int) -> np.ndarray:
    """(turns, 5): each tile's mean `speaking` per turn, and the voice's `off_screen` in the last column."""
    sums, counts = np.zeros((turns, 5)), np.zeros((turns, 1))
    for frame in frames:
        k = min(int(frame.t // TURN_S), turns - 1)
        for face_id, p in frame.speaking.faces.items():
            sums[k, tile_of(frame.boxes[face_id], 720, 576)] += p
        sums[k, 4] += frame.speaking.off_screen
        counts[k] += 1
    return sums / np.maximum(counts, 1)


def right(means: np.ndarray, speaker: int | None) -> bool:
    """The issue's rule: the speaker's mean >= 0.3 and twice any other's; nobody's over 0.2 when none is shown."""
    faces = means[:4]
    if speaker is None:
        return bool(faces.max() <= 0.2)
    others = np.delete(faces, speaker)
    return bool(faces[speaker] >= 0.3 and faces[speaker] >= 2 * others.max())


def cost() -> None:
    """CPU ms of each part, on one thread: the mesh and the motion signal a face, the attribution a frame of four
    faces, the voice's activity a second of speech."""
    from fercam.media import VideoReader
    from fercam.speaking.attribution import SpeakerAttributor
    from fercam.speaking.lips import MouthMeter, MouthMotion
    from fercam.speaking.voice_activity import VoiceActivity
    from fercam.voice.audio import load_audio

    clip = GRID / "lbax4n.mpg"
    video = VideoReader(clip)
    frames = [image for image, _ in video.frames()]
    video.close()
    box = reader_box(frames[0])
    for name, meter in (("mesh", MouthMeter()), ("motion", MouthMotion())):
        started = time.process_time()
        for _ in range(4):
            for image in frames:
                meter.measure(image, {1: box})
        print(f"{name}: {(time.process_time() - started) / (4 * len(frames)) * 1000:.2f} ms a face")
    sound = load_audio(clip)
    started = time.process_time()
    voice = VoiceActivity(keep_s=30)
    voice.feed(sound, 16000)
    print(f"voice activity (Silero): {(time.process_time() - started) / (len(sound) / 16000) * 1000:.1f} ms a second")
    attributor, rng = SpeakerAttributor(voice), np.random.default_rng(0)
    times = np.arange(0, voice.end, 1 / 25)
    started = time.process_time()
    for t in times:
        attributor.update(t, {face: 0.2 + 0.05 * rng.random() for face in range(4)})
    print(f"attribution: {(time.process_time() - started) / len(times) * 1000:.2f} ms a frame of four faces")


def reader_box(image):
    from fercam.detection import load_detector

    return load_detector().detect(image)[0].box


class Replayed:
    """A mouth meter for replaying a recorded run: the stream is handed the frame's recorded mouths as its image."""

    def measure(self, mouths: dict[int, float], crops: dict[int, Box]) -> dict[int, float]:
        assert set(mouths) == set(crops), "the replay measures other frames or faces than the recorded run"
        return mouths


def frames_of(
    video: Path, record: Path | None, reader, options: dict, live_hz: float | None = None
) -> tuple[list[SpeakingFrame], float | None]:
    """The gallery's frames and the whole reader's ms a frame: replayed from `record` if it exists (None: not
    timed), else read (and recorded there). `live_hz`: the replay measures mouths only on the frames live's
    `MouthPace` would take, and every other frame shows the newest judgement, as the live badge does."""
    if record is not None and record.exists():
        stream, frames = SpeakingStream(video, Replayed(), **options), []
        pace, said = (MouthPace(live_hz) if live_hz else None), None
        for t, boxes, mouths in json.loads(record.read_text()):
            boxes = {int(face): Box(*box) for face, box in boxes.items()}
            mouths = {int(face): opening for face, opening in mouths.items()}
            if pace is None or not mouths or pace.take(t):  # no mouths: away from speech, nothing to measure
                measured, said = stream.read(t, mouths, boxes)
            else:  # not measured now: the newest judgement, for the faces still there
                measured = {}
                said = said or Speaking(t, dict.fromkeys(boxes, 0.0))
            faces = {face: said.faces.get(face, 0.0) for face in boxes}
            frames.append(SpeakingFrame(t, boxes, measured, replace(said, faces=faces)))
        stream.close()
        return frames, None
    started = time.perf_counter()
    frames = list(reader().read(video))
    frame_ms = (time.perf_counter() - started) / len(frames) * 1000
    if record is not None:
        rows = [(f.t, {i: [b.x1, b.y1, b.x2, b.y2] for i, b in f.boxes.items()}, f.mouths) for f in frames]
        record.write_text(json.dumps(rows))
    return frames, frame_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="run the galleries whose name starts with this")
    parser.add_argument("--cache", type=Path, help="keep the galleries and their mouths here; replay them if there")
    parser.add_argument("--set", nargs="*", default=[], metavar="NAME=VALUE", help="the attributor's options")
    parser.add_argument("--cost", action="store_true", help="only time the parts")
    parser.add_argument("--live-hz", type=float, help="with --cache: mouths measured at most this often, as live")
    args = parser.parse_args()
    if args.cost:
        cost()
        return
    options = {name: float(value) for name, value in (item.split("=") for item in args.set)}
    readers: list[SpeakingReader] = []

    def reader() -> SpeakingReader:  # the detector and the mesh load only when a gallery is not cached
        readers[:] = readers or [SpeakingReader(**options)]
        return readers[0]

    tally: dict[str, list[bool]] = {}
    frame_ms: list[float] = []
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.cache or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        for name, tiles, sounds, phases in galleries():
            if not name.startswith(args.only):
                continue
            kind = name.rsplit("-", 1)[0]
            video = folder / f"{name}.mp4"
            if not video.exists():
                build_gallery(video, tiles, sounds, phases=phases, alive=kind == "alive")
            frames, ms = frames_of(video, args.cache and folder / f"{name}.json", reader, options, args.live_hz)
            frame_ms += [ms] if ms is not None else []
            means = turn_means(frames, len(sounds))
            part = "held out" if int(name.rsplit("-", 1)[1]) == HELD_OUT else "tuning"
            for k, sound in enumerate(sounds):
                speaker = tiles.index(sound) if sound in tiles else None
                ok = right(means[k], speaker)
                tally.setdefault(f"{kind}, {part}: turns right", []).append(ok)
                if speaker is not None:  # is the voice's own face at least the likeliest one?
                    tally.setdefault(f"{kind}, {part}: highest mean", []).append(
                        int(np.argmax(means[k][:4])) == speaker
                    )
                elif sound is not None:
                    tally.setdefault(f"{kind}, {part}: off screen", []).append(ok)
                who = "nobody" if sound is None else ("off screen" if speaker is None else f"tile {speaker}")
                row = " ".join(f"{m:.2f}" for m in means[k])
                print(f"{name:11s} turn {k} {who:10s} {row}" + ("" if ok else "  WRONG"))
    for label, oks in sorted(tally.items()):
        print(f"{label} {sum(oks)}/{len(oks)}")
    if frame_ms:
        print(f"whole reader (detect + track + mesh near speech + attribution): {np.mean(frame_ms):.1f} ms a frame")


if __name__ == "__main__":
    main()
