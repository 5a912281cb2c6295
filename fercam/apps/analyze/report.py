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

TIMELINE_COLUMNS = ["time_s", "frame", "face_id", "x1", "y1", "x2", "y2", "emotion", "confidence", *EMOTIONS]


class TimelineWriter:
    """One CSV row per face per analysed frame, each flushed as written: a reader never sees a half line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(TIMELINE_COLUMNS)
        self.rows: list[tuple[float, int, np.ndarray]] = []  # (time, face id, probs) for the summary

    def write(self, analysis: Analysis, *_frame) -> None:
        for face in analysis.faces:
            record = face_record(face)  # the same fields, rounded the same, as the --events lines
            row = [round(analysis.timestamp, 3), analysis.frame_index, record["id"], *record["box"]]
            self._csv.writerow([*row, record["emotion"], record["confidence"], *record["probs"].values()])
            self._file.flush()
            self.rows.append((analysis.timestamp, face.id, face.probs))

    def close(self) -> None:
        self._file.close()


def summarize_faces(rows: list[tuple[float, int, np.ndarray]], analysed: Sequence[float], end: float) -> dict:
    """Per face: time on screen, dominant emotion, share of time per emotion, mean probabilities.

    `analysed`: the media times of the analysed frames, in order; each stands for the time until the next
    one (the last until `end`), so time on screen follows the media, whatever the frame rate or `--every`.
    """
    times = np.asarray(analysed, np.float64)
    spans = np.diff(np.append(times, max(end, times[-1]))) if len(times) else times
    by_face: dict[int, list[tuple[float, np.ndarray]]] = defaultdict(list)
    for time_s, face_id, probs in rows:
        by_face[face_id].append((time_s, probs))
    faces = {}
    for face_id, samples in sorted(by_face.items()):
        probs = np.stack([p for _, p in samples])
        tops = np.bincount(np.argmax(probs, axis=1), minlength=len(EMOTIONS)) / len(probs)
        at = np.searchsorted(times, [t for t, _ in samples]).clip(0, max(len(spans) - 1, 0))
        on_screen = float(spans[np.unique(at)].sum()) if len(spans) else 0.0  # a frame counted once per face
        faces[str(face_id)] = {
            "first_seen_s": round(samples[0][0], 3),
            "last_seen_s": round(samples[-1][0], 3),
            "time_on_screen_s": round(on_screen, 3),
            "dominant_emotion": EMOTIONS[int(np.argmax(tops))],
            "share_of_time": {name: round(float(s), 4) for name, s in zip(EMOTIONS, tops)},
            "mean_probabilities": {name: round(float(p), 4) for name, p in zip(EMOTIONS, probs.mean(0))},
        }
    return faces


def main_faces(rows: list[tuple[float, int, np.ndarray]], limit: int = 6) -> list[int]:
    """The ids seen longest, so plots of crowded clips stay readable."""
    counts = defaultdict(int)
    for _, face_id, _ in rows:
        counts[face_id] += 1
    return sorted(counts, key=lambda i: -counts[i])[:limit]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_colors() -> list[tuple[float, float, float]]:
    """The overlay colours (BGR 0..255) as matplotlib RGB, so plots and video agree."""
    return [tuple(c / 255 for c in EMOTION_COLORS[i][::-1]) for i in range(len(EMOTIONS))]


def plot_timelines(rows, path: Path, *, voice=None, duration: float | None = None, body=()) -> None:
    """Each face's emotion probabilities over time, its body cues and the voice's below them, on one time axis."""
    plt = _pyplot()
    face_ids = main_faces(rows)
    body_ids = [i for i in face_ids if any(row[1] == i for row in body)]
    panels = len(face_ids) + len(body_ids) + (1 if voice else 0) or 1
    fig, axes = plt.subplots(panels, 1, figsize=(10, 2.2 * panels + 0.8), sharex=True, squeeze=False)
    colors = _plot_colors()
    for ax, face_id in zip(axes[:, 0], face_ids):
        times = np.array([t for t, i, _ in rows if i == face_id])
        probs = np.stack([p for _, i, p in rows if i == face_id])
        for k, name in enumerate(EMOTIONS):
            ax.plot(times, probs[:, k], color=colors[k], label=name, lw=1.4)
        ax.set(ylim=(0, 1), ylabel=f"face {face_id}")
    if body_ids:
        from fercam.body.timeline import plot_body_cues

        for ax, face_id in zip(axes[len(face_ids) :, 0], body_ids):
            plot_body_cues(ax, body, face_id)
    if voice:
        ax = axes[-1, 0]
        for k, name in enumerate(EMOTIONS):
            pts = [((w.start + w.end) / 2, w.probs[k]) for w in voice if w.probs is not None]
            if pts:
                ax.plot(*zip(*pts), color=colors[k], lw=1.4, marker=".", label=name)
        ax.set(ylim=(0, 1), ylabel="voice")
    if not face_ids and not voice:
        axes[0, 0].text(0.5, 0.5, "no faces found", ha="center", va="center", transform=axes[0, 0].transAxes)
    axes[0, 0].legend(loc="upper right", ncol=7, fontsize=7)
    axes[-1, 0].set_xlabel("time (s)")
    if duration:
        axes[-1, 0].set_xlim(0, duration)
    fig.suptitle("Emotions over time")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_distribution(summary_faces: dict, path: Path) -> None:
    """Share of time per emotion, per face (stacked bars)."""
    plt = _pyplot()
    ids = list(summary_faces)[:12]
    fig, ax = plt.subplots(figsize=(max(5, 1 + 0.8 * len(ids)), 4))
    bottom = np.zeros(len(ids))
    for k, name in enumerate(EMOTIONS):
        shares = np.array([summary_faces[i]["share_of_time"][name] for i in ids])
        ax.bar([f"face {i}" for i in ids], shares, bottom=bottom, label=name, color=_plot_colors()[k])
        bottom += shares
    ax.set(ylim=(0, 1), ylabel="share of time", title="Emotion distribution per face")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_emotion_shares(shares: dict[str, float], path: Path, *, title: str) -> None:
    """One bar per emotion: its share of all face time across a whole archive."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar(list(EMOTIONS), [shares.get(name, 0.0) for name in EMOTIONS], color=_plot_colors())
    ax.set(ylim=(0, 1), ylabel="share of face time", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
