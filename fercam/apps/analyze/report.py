"""Per-input analysis outputs: timeline.csv rows, summary.json, and the PNG plots."""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fercam.annotate import EMOTION_COLORS
from fercam.events import face_record
from fercam.types import EMOTIONS, Analysis

TIMELINE_COLUMNS = [
    *("time_s", "frame", "face_id", "x1", "y1", "x2", "y2", "emotion", "confidence", "unsure"),
    *EMOTIONS,
    "speaking",
]
UNSURE = "unsure"  # the reading of a face (or voice window) whose confidence is under its model's threshold
READINGS = (*EMOTIONS, UNSURE)  # what the annotated video can say about a face


class TimelineWriter:
    """One CSV row per face per analysed frame, each flushed as written: a reader never sees a half line.
    `emotion` is the top emotion; `unsure` is 1 where the video says "unsure" instead (confidence under
    the threshold that summary.json gives as `unsure_below`); `speaking` is how likely the face speaks, from
    `speaking.now` (a `speakers.SpeakingStage` that wrote this frame first), empty where that is unknown."""

    def __init__(self, path: Path, speaking=None) -> None:
        self.path, self.speaking = path, speaking
        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(TIMELINE_COLUMNS)
        self.rows: list[tuple[float, int, np.ndarray, bool]] = []  # (time, face id, probs, unsure) for the summary

    def write(self, analysis: Analysis, *_frame) -> None:
        for face in analysis.faces:
            record = face_record(face)  # the same fields, rounded the same, as the --events lines
            row = [round(analysis.timestamp, 3), analysis.frame_index, record["id"], *record["box"]]
            reading = [record["emotion"], record["confidence"], int(record["unsure"])]
            now = self.speaking.now if self.speaking else None
            speaks = "" if now is None else round(now.get(face.id, 0.0), 3)
            self._csv.writerow([*row, *reading, *record["probs"].values(), speaks])
            self._file.flush()
            self.rows.append((analysis.timestamp, face.id, face.probs, face.unsure))

    def close(self) -> None:
        self._file.close()


def reading_of(probs: np.ndarray, unsure: bool) -> str:
    """What the video says about a face: "unsure", or its top emotion."""
    return UNSURE if unsure else EMOTIONS[int(np.argmax(probs))]


def dominant_emotion(shares: dict[str, float]) -> str | None:
    """The reading shown most often, when that is an emotion: None when "unsure" (or "no speech") is shown
    as often or more, or two emotions tie, so 2 sure windows among 19 unsure ones name no emotion."""
    ranked = sorted(shares.items(), key=lambda item: -item[1])
    if not ranked or ranked[0][1] <= 0 or (len(ranked) > 1 and ranked[1][1] == ranked[0][1]):
        return None
    return ranked[0][0] if ranked[0][0] in EMOTIONS else None


def summarize_faces(rows: list[tuple[float, int, np.ndarray, bool]], analysed: Sequence[float], end: float) -> dict:
    """Per face: time on screen, dominant emotion, share of time per reading (the seven emotions and
    "unsure", as the video shows them), mean probabilities.

    `analysed`: the media times of the analysed frames, in order; each stands for the time until the next
    one (the last until `end`), so time on screen follows the media, whatever the frame rate or `--every`.
    """
    times = np.asarray(analysed, np.float64)
    spans = np.diff(np.append(times, max(end, times[-1]))) if len(times) else times
    by_face: dict[int, list[tuple[float, np.ndarray, bool]]] = defaultdict(list)
    for time_s, face_id, probs, unsure in rows:
        by_face[face_id].append((time_s, probs, unsure))
    faces = {}
    for face_id, samples in sorted(by_face.items()):
        probs = np.stack([p for _, p, _ in samples])
        readings = [READINGS.index(reading_of(p, u)) for _, p, u in samples]
        shares = dict(zip(READINGS, np.bincount(readings, minlength=len(READINGS)) / len(samples)))
        at = np.searchsorted(times, [t for t, _, _ in samples]).clip(0, max(len(spans) - 1, 0))
        on_screen = float(spans[np.unique(at)].sum()) if len(spans) else 0.0  # a frame counted once per face
        faces[str(face_id)] = {
            "first_seen_s": round(samples[0][0], 3),
            "last_seen_s": round(samples[-1][0], 3),
            "time_on_screen_s": round(on_screen, 3),
            "dominant_emotion": dominant_emotion(shares),
            "share_of_time": {name: round(float(s), 4) for name, s in shares.items()},
            "mean_probabilities": {name: round(float(p), 4) for name, p in zip(EMOTIONS, probs.mean(0))},
        }
    return faces


def summarize_photo(rows: list[tuple[float, int, np.ndarray, bool]]) -> dict:
    """Per face of one picture: what the annotated picture says ("unsure" or the emotion), the top emotion's
    confidence and the seven probabilities; no times, a photo has none."""
    return {
        str(face_id): {
            "emotion": reading_of(probs, unsure),
            "confidence": round(float(np.max(probs)), 4),
            "probabilities": {name: round(float(p), 4) for name, p in zip(EMOTIONS, probs)},
        }
        for _, face_id, probs, unsure in rows
    }


def main_faces(rows: list[tuple[float, int, np.ndarray, bool]], limit: int = 6) -> list[int]:
    """The ids seen longest, so plots of crowded clips stay readable."""
    counts = defaultdict(int)
    for _, face_id, _, _ in rows:
        counts[face_id] += 1
    return sorted(counts, key=lambda i: -counts[i])[:limit]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


UNSURE_COLOR = "#9e9e9e"  # grey, as the overlay draws an unsure face (no emotion's colour)
NO_SPEECH_COLOR = "#9ecae1"  # light blue: silence, nothing read
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.01, 1.0), "fontsize": 8, "frameon": False}  # beside, not over


def _plot_colors() -> list[tuple[float, float, float]]:
    """The overlay colours (BGR 0..255) as matplotlib RGB, so plots and video agree; the light ones (happy's
    yellow, neutral's grey) darkened until they read as lines on white."""
    colors = []
    for i in range(len(EMOTIONS)):
        rgb = np.array(EMOTION_COLORS[i][::-1]) / 255
        luminance = float(rgb @ (0.299, 0.587, 0.114))
        colors.append(tuple(rgb * min(1.0, 0.6 / luminance)))
    return colors


def _spans(times: np.ndarray, flags: Sequence[bool], step: float) -> list[tuple[float, float]]:
    """(start, end) of each run of flagged samples, each sample standing for `step` seconds from its time."""
    spans: list[tuple[float, float]] = []
    for t, flag in zip(times, flags):
        if not flag:
            continue
        if spans and t <= spans[-1][1] + 1e-6:
            spans[-1] = (spans[-1][0], t + step)
        else:
            spans.append((t, t + step))
    return spans


def _shade(ax, spans, color: str, label: str, hatch: str | None = None) -> None:
    for k, (a, b) in enumerate(spans):
        ax.axvspan(a, b, color=color, alpha=0.45, lw=0, hatch=hatch, label=None if k else label)


def _step(times: np.ndarray) -> float:
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0


def _with_gaps(times: np.ndarray, values: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """NaN between samples further apart than 1.5 steps: a face out of the picture draws no line."""
    gaps = np.flatnonzero(np.diff(times) > 1.5 * step) + 1
    return np.insert(times, gaps, np.nan), np.insert(values, gaps, np.nan, axis=0)


def _plot_face(ax, rows, face_id: int, unsure_below: float | None) -> None:
    colors = _plot_colors()
    times = np.array([t for t, i, _, _ in rows if i == face_id])
    probs = np.stack([p for _, i, p, _ in rows if i == face_id])
    unsure = [u for _, i, _, u in rows if i == face_id]
    step = _step(times)
    _shade(ax, _spans(times, unsure, step), UNSURE_COLOR, "shown as unsure")
    gapped_times, gapped = _with_gaps(times, probs, step)
    for k, name in enumerate(EMOTIONS):
        ax.plot(gapped_times, gapped[:, k], color=colors[k], label=name, lw=1.4)
    if unsure_below:
        ax.axhline(unsure_below, color="black", ls=":", lw=0.8, label=f"unsure below {unsure_below:.2f}")
    ax.set(ylim=(0, 1), ylabel=f"face {face_id}\nprobability")
    ax.legend(**LEGEND)


def _plot_voice(ax, voice) -> None:
    colors = _plot_colors()
    times = np.array([(w.start + w.end) / 2 for w in voice])
    step = _step(times)
    starts = times - step / 2
    _shade(ax, _spans(starts, [not w.speech for w in voice], step), NO_SPEECH_COLOR, "no speech")
    _shade(ax, _spans(starts, [w.speech and w.label == UNSURE for w in voice], step), UNSURE_COLOR, "unsure")
    probs = np.array([w.probs if w.speech and w.probs is not None else [np.nan] * len(EMOTIONS) for w in voice])
    for k, name in enumerate(EMOTIONS):
        ax.plot(times, probs[:, k], color=colors[k], lw=1.4, marker=".", label=name)
    ax.set(ylim=(0, 1), ylabel="voice\nprobability")
    ax.legend(**LEGEND)


def plot_timelines(
    rows,
    path: Path,
    *,
    voice=None,
    duration: float | None = None,
    body=(),
    unsure_below: float | None = None,
    speaking=None,
) -> None:
    """Each face's emotion probabilities over time (where the video says "unsure" shaded grey; `speaking(ax, face
    id)` adds where it speaks), its body cues and the voice's (no speech and unsure shaded) below them, on one time
    axis; legends beside the panels."""
    plt = _pyplot()
    face_ids = main_faces(rows)
    body_ids = [i for i in face_ids if any(row[1] == i for row in body)]
    panels = len(face_ids) + len(body_ids) + (1 if voice else 0) or 1
    fig, axes = plt.subplots(panels, 1, figsize=(11, 2.2 * panels + 0.8), sharex=True, squeeze=False)
    for ax, face_id in zip(axes[:, 0], face_ids):
        if speaking:
            speaking(ax, face_id)
        _plot_face(ax, rows, face_id, unsure_below)
    if body_ids:
        from fercam.body.timeline import plot_body_cues

        for ax, face_id in zip(axes[len(face_ids) :, 0], body_ids):
            plot_body_cues(ax, body, face_id)
    if voice:
        _plot_voice(axes[-1, 0], voice)
    if not face_ids and not voice:
        axes[0, 0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[-1, 0].set_xlabel("time (s)")
    if duration:
        axes[-1, 0].set_xlim(0, duration)
    fig.suptitle("Emotions over time")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_photo(rows, path: Path, *, body=(), unsure_below: float | None = None) -> None:
    """A photo's faces: per face, its seven probabilities as bars, what the picture says in the title, and
    its body cues beside them (a photo has no time axis)."""
    from fercam.body.cues import CUE_NAMES

    plt = _pyplot()
    colors = _plot_colors()
    fig, axes = plt.subplots(max(1, len(rows)), 1, figsize=(8, 2.2 * max(1, len(rows)) + 0.6), squeeze=False)
    cues = {face_id: cue for _, face_id, cue in body}
    for ax, (_, face_id, probs, unsure) in zip(axes[:, 0], rows):
        ax.barh(list(EMOTIONS)[::-1], probs[::-1], color=colors[::-1])
        top = EMOTIONS[int(np.argmax(probs))]
        said = f"unsure (top: {top} {np.max(probs):.0%})" if unsure else f"{top} {np.max(probs):.0%}"
        if unsure_below:
            ax.axvline(unsure_below, color="black", ls=":", lw=0.8, label=f"unsure below {unsure_below:.2f}")
            ax.legend(loc="lower left", bbox_to_anchor=(1.01, 0.0), fontsize=8, frameon=False)
        ax.set(xlim=(0, 1), xlabel="probability", title=f"face {face_id}: {said}")
        if face_id in cues:
            lines = [f"{name.replace('_', ' ')}: {getattr(cues[face_id], name).state}" for name in CUE_NAMES]
            ax.text(1.04, 1.0, "body cues\n" + "\n".join(lines), transform=ax.transAxes, va="top", fontsize=8)
    if not rows:
        axes[0, 0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[0, 0].set_axis_off()
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_distribution(summary_faces: dict, path: Path) -> None:
    """Share of time per reading (the seven emotions, and "unsure" in grey), per face (stacked bars)."""
    plt = _pyplot()
    ids = list(summary_faces)[:12]
    fig, ax = plt.subplots(figsize=(max(5, 1 + 0.8 * len(ids)), 4))
    bottom = np.zeros(len(ids))
    for name, color in zip(READINGS, [*_plot_colors(), UNSURE_COLOR]):
        shares = np.array([summary_faces[i]["share_of_time"].get(name, 0.0) for i in ids])
        ax.bar([f"face {i}" for i in ids], shares, bottom=bottom, label=name, color=color)
        bottom += shares
    ax.set(ylim=(0, 1), ylabel="share of time", title="Emotion distribution per face")
    ax.legend(**LEGEND)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def plot_emotion_shares(shares: dict[str, float], path: Path, *, title: str) -> None:
    """One bar per reading (the emotions and "unsure"): its share of all face time across a whole archive."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(READINGS), [shares.get(name, 0.0) for name in READINGS], color=[*_plot_colors(), UNSURE_COLOR])
    ax.set(ylim=(0, 1), ylabel="share of face time", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
