"""What `fercam analyze` is asked (`Options`) and what it answers per input (`InputResult`): the values its
stages (frames, sound), its Ray path (cluster, archive) and the CLI pass around, kept apart from the code that
runs them so that no stage imports the orchestrator.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fercam.defaults import DEFAULT_DETECTOR


@dataclass
class InputResult:
    """One input's outcome: its folder and counts, or the one-line error that failed it."""

    input: str
    out_dir: str = ""
    frames: int = 0
    faces: int = 0
    error: str = ""
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)
    frames_s: float = 0.0  # wall time of the frame stage (decode, faces, body, video): its speed

    def summary_line(self) -> str:
        state = " (interrupted: partial results)" if self.interrupted else ""
        notes = "".join(f"; {n}" for n in self.notes)
        speed = f" at {self.frames / self.frames_s:.1f} fps" if self.frames > 1 and self.frames_s > 0 else ""
        return f"{self.frames} frames{speed}, {self.faces} face id(s) -> {self.out_dir}{state}{notes}"


@dataclass(frozen=True)
class Options:
    """How each input is analysed: made once from the command line, passed unchanged down to every stage
    and to Ray's workers."""

    every: int = 1
    duration: float = 0
    video: bool = True
    detector: str = DEFAULT_DETECTOR
    progress: bool = True  # a per-input frame bar; off where nobody watches (cluster tasks)


DEFAULT_OPTIONS = Options()  # frozen: one instance serves every default
