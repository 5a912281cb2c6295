"""Who speaks, in `fercam analyze`: each face's `speaking` at each analysed frame (timeline.csv), the voice windows
each face owns with its person reading (voice_timeline.csv), and per face its speaking time, its own voice and its
person reading (summary.json), drawn in its lane of timeline.png. How the attribution works: docs/speaking.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.pictures import ImageSource
from fercam.source_specs import STREAM_SCHEMES
from fercam.speaking.attribution import SPEAKS
from fercam.speaking.person import PersonReading, pool
from fercam.types import EMOTIONS

MIN_FPS = 12.0  # analysed frames a second under which the lips' syllables (4-5 Hz) cannot be followed
OWNER_COLUMNS = ["face_id", "person_emotion", "person_confidence", "disagree"]


def speaking_problem(spec: str, clock, every: int) -> str:
    """Why who-speaks cannot be judged on this input ("" when it can): `speaking` is then left empty."""
    from fercam.media import has_audio

    if spec.lower().startswith(STREAM_SCHEMES):
        return "a stream's sound is not read"
    if isinstance(clock.source, ImageSource):
        return "pictures have no sound"
    if not has_audio(spec):
        return "no sound track"
    if not clock.fps or clock.fps / every < MIN_FPS:
        return f"{clock.fps / every:.1f} analysed frames a second: the lips need {MIN_FPS:.0f} (a smaller --every)"
    return ""


class SpeakingStage:
    """Runs before the timeline's writer at each analysed frame: `write(analysis, frame)` judges every face, and
    `now` holds this frame's {face id: speaking} for the timeline's row (None: unknown)."""

    def __init__(self, spec: str, problem: str) -> None:
        from fercam.litert import ModelError
        from fercam.voice.audio import AudioError

        self.problem, self.now, self.rows, self.cpu_s = problem, None, [], 0.0
        self._stream = None
        if not problem:
            from fercam.speaking.clip import SpeakingStream

            try:
                self._stream = SpeakingStream(spec)
            except (AudioError, ModelError) as exc:  # unreadable sound, no mesh model: the faces still complete
                self.problem = str(exc)

    def write(self, analysis, frame) -> None:
        if self._stream is None:
            return
        started = time.thread_time()  # this thread's CPU: the mesh and Silero run on it, one thread each
        boxes = {face.id: face.box for face in analysis.faces}
        self.now = self._stream.judge(analysis.timestamp, frame.image, boxes)
        self.cpu_s += time.thread_time() - started
        self.rows.append((analysis.timestamp, self.now))

    def cut(self, until_s: float) -> None:
        self.rows = [row for row in self.rows if row[0] < until_s]

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def record(self) -> dict:
        """summary.json's `speaking`: whether it was judged (else why not), on how many frames, at what cost."""
        if self.problem:
            return {"judged": False, "reason": self.problem}
        frames = len(self.rows)
        return {
            "judged": True,
            "frames": frames,
            "frames_with_mouths_measured": self._stream.measured if self._stream else 0,
            "cpu_ms_per_frame": round(1000 * self.cpu_s / max(frames, 1), 2),
        }


@dataclass(frozen=True)
class Owner:
    """The face that spoke a voice window, and its person reading (face and voice pooled) over the window."""

    face_id: int
    person: PersonReading


def own_windows(windows, speaking_rows, face_rows) -> list[Owner | None]:
    """Per voice window: the face that spoke most over it if its mean `speaking` there is at least `SPEAKS`, else
    None (no speech, nobody, or a voice from off screen)."""
    times = np.array([t for t, _ in speaking_rows])
    face_times = np.array([t for t, *_ in face_rows])
    owners = []
    for window in windows:
        frames = speaking_rows[np.searchsorted(times, window.start) : np.searchsorted(times, window.end)]
        totals: dict[int, float] = {}
        for _, faces in frames:
            for face_id, p in faces.items():
                totals[face_id] = totals.get(face_id, 0.0) + p
        best = max(totals, key=totals.get, default=None)
        if not window.speech or best is None or totals[best] < SPEAKS * len(frames):
            owners.append(None)
            continue
        rows = face_rows[np.searchsorted(face_times, window.start) : np.searchsorted(face_times, window.end)]
        face = np.mean([probs for _, face_id, probs, _ in rows if face_id == best], axis=0)
        owners.append(Owner(best, pool(face, window.probs)))
    return owners


def write_voice_timeline(windows, owners: list[Owner | None], path: Path) -> None:
    """voice_timeline.csv: each window as `write_voice_csv` writes it, then its owner and person reading (empty when
    no face owns it)."""
    from fercam.voice.classifier import write_voice_csv

    cells = [
        [o.face_id, o.person.emotion, f"{o.person.confidence:.4f}", int(o.person.disagree)] if o else [""] * 4
        for o in owners
    ]
    write_voice_csv(windows, path, columns=OWNER_COLUMNS, cells=cells)


def summarize_speakers(faces: dict, stage: SpeakingStage, voice, owners: list[Owner | None], face_rows) -> None:
    """Adds to each face of summary.json: `speaking_s` (None when not judged), `voice` (its own windows, as the
    summary's `voice` counts them) and `person` (face and voice pooled over those windows), None when it owns none."""
    from fercam.apps.analyze.sound import Voice, voice_summary

    times = np.array([t for t, _ in stage.rows])
    spans = np.diff(times, append=times[-1] + np.median(np.diff(times))) if len(times) > 1 else np.ones(len(times))
    for key, face in faces.items():
        face_id = int(key)
        speaks = [faces_now.get(face_id, 0.0) >= SPEAKS for _, faces_now in stage.rows]
        face["speaking_s"] = None if stage.problem else round(float(spans[speaks].sum()), 3)
        owned = [(w, o) for w, o in zip(voice.windows if voice else [], owners) if o and o.face_id == face_id]
        face["voice"] = voice_summary(Voice([w for w, _ in owned], voice.until, voice.unsure_below)) if owned else None
        face["person"] = _person([w for w, _ in owned], face_id, face_rows).record() if owned else None


def _person(windows, face_id: int, face_rows) -> PersonReading:
    """The face's mean probabilities over the windows it owns, pooled with its voice's mean over them."""
    times = np.array([t for t, *_ in face_rows])
    inside = np.zeros(len(times), bool)
    for w in windows:
        inside[np.searchsorted(times, w.start) : np.searchsorted(times, w.end)] = True
    face = [row[2] for row, within in zip(face_rows, inside) if within and row[1] == face_id]
    return pool(np.mean(face, axis=0), np.mean([w.probs for w in windows], axis=0))


SPEAKING_COLOR = "#41ab5d"  # green: a face's speaking spans, behind its lines


def draw_speaking(ax, face_id: int, stage: SpeakingStage, windows, owners: list[Owner | None]) -> None:
    """In a face's lane: where it speaks (shaded green) and the voice windows it owns, as a bar along the top: each
    window's middle hop (as the voice's lane places it) in the colour of the voice's emotion, hatched if unsure."""
    from fercam.apps.analyze.report import UNSURE_COLOR, _plot_colors, _shade, _spans, _step

    if not stage.rows:
        return
    times = np.array([t for t, _ in stage.rows])
    speaks = [faces.get(face_id, 0.0) >= SPEAKS for _, faces in stage.rows]
    _shade(ax, _spans(times, speaks, _step(times)), SPEAKING_COLOR, "speaking")
    colors, hop = _plot_colors(), _step(np.array([(w.start + w.end) / 2 for w in windows or []]))
    owned = [w for w, o in zip(windows or [], owners) if o and o.face_id == face_id]
    for sure in (True, False):
        bars = [((w.start + w.end - hop) / 2, hop) for w in owned if bool(w.emotion) == sure]
        fill = [colors[EMOTIONS.index(w.emotion)] for w in owned if w.emotion] if sure else "white"
        label = "its voice (the emotion's colour)" if sure else "its voice: unsure"
        if bars:
            hatch = None if sure else "///"
            ax.broken_barh(bars, (0.93, 0.06), facecolors=fill, edgecolor=UNSURE_COLOR, hatch=hatch, label=label)
