"""2x2 galleries of the shared GRID talking faces, with the sound of one, made by ffmpeg (tests/test_speaking.py,
tools/measure_speaking.py).

A gallery is a row of 3-second turns; each turn plays the sound of one clip (shown or not) or a quiet room. With
`phases=None` the tiles are still except the one whose sound plays, which talks in step with it: frozen (their
first frame), or with `alive=True` a listener's face (the clip's last `ALIVE_FRAMES` frames, after its sentence,
played forward and back: it blinks and shifts, its mouth shut); with a phase per tile every tile talks all along
(its clip looped from that point), and its own sound, when it plays, is in step with it: the other tiles then talk
out of step.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from conftest import SHARED

# FERCAM_SHARED: the shared corpora where they are not beside the checkout (a git worktree, CI)
GRID = Path(os.environ.get("FERCAM_SHARED", SHARED)) / "media" / "grid"
TURN_S = 3.0  # every GRID clip is 3 s: 75 frames at 25 fps
FPS, TILE = 25, (360, 288)
RATE = 16000
OFF_SCREEN_PHASE = 0.4  # where a clip not shown starts: out of step with a tile that talks from 0
ALIVE_FRAMES = 10  # every clip's sentence has ended 0.4 s before its end (the seven clips' speech ends by frame 63)


def build_gallery(
    out: Path, tiles: list[str], sounds: list[str | None], *, phases: list[float] | None = None, alive: bool = False
) -> Path:
    """`tiles`: four clip names (top left, top right, bottom left, bottom right); `sounds`: per turn the clip
    whose sound plays (None: a quiet room). Writes an H.264 + AAC mp4 at 720x576, 25 fps."""
    clips = sorted({*tiles, *(s for s in sounds if s)})
    inputs = [arg for name in clips for arg in ("-i", str(GRID / f"{name}.mpg"))]
    index = {name: i for i, name in enumerate(clips)}
    duration = TURN_S * len(sounds)
    graph, video_uses, audio_uses = [], {n: [] for n in clips}, {n: [] for n in clips}

    def video_of(name: str) -> str:
        label = f"v{index[name]}_{len(video_uses[name])}"
        video_uses[name].append(label)
        return label

    def audio_of(name: str) -> str:
        label = f"a{index[name]}_{len(audio_uses[name])}"
        audio_uses[name].append(label)
        return label

    def looped(label: str, start: float) -> str:  # the clip looped, from `start` on, for the whole gallery
        loop = f"[{label}]loop=loop=-1:size={round(TURN_S * FPS)}:start=0,setpts=N/{FPS}/TB"
        return f"{loop},trim=start={start}:duration={duration},setpts=PTS-STARTPTS"

    for j, name in enumerate(tiles):
        if phases is not None:
            graph.append(f"{looped(video_of(name), phases[j])}[t{j}]")
            continue
        parts = []
        for k, sound in enumerate(sounds):
            part = f"t{j}_{k}"
            if sound == name:  # this tile's own turn: it talks, in step with its sound
                graph.append(f"[{video_of(name)}]trim=duration={TURN_S},setpts=PTS-STARTPTS[{part}]")
            elif alive:  # a listener: its last frames forward and back, over and over
                first, frames = round(TURN_S * FPS) - ALIVE_FRAMES, round(TURN_S * FPS)
                ahead, back = f"{part}f", f"{part}b"
                graph.append(
                    f"[{video_of(name)}]trim=start_frame={first}:end_frame={frames},setpts=N/{FPS}/TB,split[{ahead}][{back}]"
                )
                graph.append(f"[{back}]reverse[{back}r]")
                cycle = f"loop=loop=-1:size={2 * ALIVE_FRAMES}:start=0,setpts=N/{FPS}/TB,trim=duration={TURN_S}"
                graph.append(f"[{ahead}][{back}r]concat=n=2:v=1:a=0,{cycle},setpts=PTS-STARTPTS[{part}]")
            else:  # still: its first frame, held for the turn
                held = f"loop=loop={round(TURN_S * FPS) - 1}:size=1"
                graph.append(f"[{video_of(name)}]trim=end_frame=1,{held},setpts=N/{FPS}/TB[{part}]")
            parts.append(f"[{part}]")
        graph.append(f"{''.join(parts)}concat=n={len(sounds)}:v=1:a=0[t{j}]")
    graph.append("[t0][t1][t2][t3]xstack=inputs=4:layout=0_0|w0_0|0_h0|w0_h0[v]")

    sound_parts = []
    for k, sound in enumerate(sounds):
        part = f"s{k}"
        if sound is None:  # a quiet room, about -55 dBFS
            graph.append(f"anoisesrc=c=pink:a=0.002:r={RATE}:d={TURN_S},aformat=channel_layouts=mono[{part}]")
        else:
            shown = sound in tiles
            start = (phases[tiles.index(sound)] if phases is not None else 0.0) if shown else OFF_SCREEN_PHASE
            size = round(TURN_S * RATE)
            graph.append(
                f"[{audio_of(sound)}]aresample={RATE},aformat=channel_layouts=mono,apad=whole_len={size},"
                f"atrim=end_sample={size},aloop=loop=-1:size={size},asetpts=N/SR/TB,"
                f"atrim=start={start}:duration={TURN_S},asetpts=PTS-STARTPTS[{part}]"
            )
        sound_parts.append(f"[{part}]")
    graph.append(f"{''.join(sound_parts)}concat=n={len(sounds)}:v=0:a=1[a]")

    for name in clips:  # each input split into as many copies as the graph uses
        for kind, uses in (("v", video_uses[name]), ("a", audio_uses[name])):
            if uses:
                split = "split" if kind == "v" else "asplit"
                graph.insert(0, f"[{index[name]}:{kind}]{split}={len(uses)}{''.join(f'[{u}]' for u in uses)}")
    command = ["ffmpeg", "-v", "error", "-y", *inputs, "-filter_complex", ";".join(graph), "-map", "[v]", "-map", "[a]"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "20", "-pix_fmt", "yuv420p", "-r", str(FPS)]
    command += ["-c:a", "aac", "-b:a", "96k", "-ar", str(RATE), "-t", str(duration), str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return out
