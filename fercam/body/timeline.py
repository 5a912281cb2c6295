"""`fercam analyze` outputs for the body cues: body_timeline.csv and the cue panels of timeline.png."""

from __future__ import annotations

import csv
from pathlib import Path

from fercam.body.cues import CUE_NAMES, BodyCues
from fercam.body.reader import BodyCueReader
from fercam.types import Analysis, Frame

BODY_COLUMNS = ["time_s", "frame", "face_id", *(c for name in CUE_NAMES for c in (name, f"{name}_confidence"))]
STATE_COLORS = {  # matplotlib colours: what stands out is strong, the unremarkable pale (each its own), unknown hatched
    "yes": "#d62728",
    "in": "#ff7f0e",
    "back": "#9467bd",
    "open": "#2ca02c",
    "closed": "#8c564b",
    "nod": "#1f77b4",
    "shake": "#e377c2",
    "moving": "#bcbd22",
    "no": "#c9d6df",
    "upright": "#c7e9c0",
    "neutral": "#fde9a9",
    "still": "#dccfc0",
    "unknown": "#ffffff",
}
STATE_MEANINGS = {  # the legend's words: which cue a state belongs to, and what it means
    "yes": "yes (arms crossed / hand at face / shoulders raised)",
    "no": "no (arms crossed / hand at face / shoulders raised)",
    "in": "lean in",
    "back": "lean back",
    "upright": "lean: upright",
    "open": "openness: open",
    "closed": "openness: closed",
    "neutral": "openness: neutral",
    "nod": "head: nod",
    "shake": "head: shake",
    "still": "head: still",
    "moving": "head: moving (drifts, neither nod nor shake)",
    "unknown": "unknown (not in the picture)",
}


class BodyTimelineWriter:
    """Runs the body-cue stage on each analysis; one CSV row per face per pose run, flushed as it goes."""

    def __init__(self, path: Path, reader: BodyCueReader | None = None) -> None:
        if reader is None:
            from fercam.body.pose import BlazePose

            reader = BodyCueReader(BlazePose(num_threads=1))  # `run_offline` keeps both cores busy with its threads
        self.reader = reader
        self._file = path.open("w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._file)
        self._csv.writerow(BODY_COLUMNS)
        self.rows: list[tuple[float, int, BodyCues]] = []  # (time, face id, cues) for the plot

    def write(self, analysis: Analysis, frame: Frame) -> None:
        found = self.reader.read(frame, analysis.faces)
        if self.reader.last_run != frame.timestamp:
            return  # between pose runs the posture has not been read again
        for face_id, body in found.items():
            states = [v for _, cue in body.items() for v in (cue.state, round(cue.confidence, 3))]
            self._csv.writerow([round(analysis.timestamp, 3), analysis.frame_index, face_id, *states])
            self.rows.append((analysis.timestamp, face_id, body))
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def plot_body_cues(ax, rows: list[tuple[float, int, BodyCues]], face_id: int) -> None:
    """One face's cues as coloured bands, one band a cue, on the face timeline's time axis."""
    from matplotlib.patches import Patch

    samples = [(t, body) for t, i, body in rows if i == face_id]
    seen: set[str] = set()
    for k, name in enumerate(CUE_NAMES):
        bands: dict[str, list[list[float]]] = {}  # each state's spans, one draw call a state (one a sample is slow)
        last = None
        for (t, body), nxt in zip(samples, samples[1:] + [None]):
            state = getattr(body, name).state
            width = (nxt[0] - t) if nxt else (t - samples[-2][0] if len(samples) > 1 else 0.3)
            spans = bands.setdefault(state, [])
            if state == last:
                spans[-1][1] += width  # the state goes on: one longer band
            else:
                spans.append([t, width])
            last = state
        for state, spans in bands.items():
            ax.broken_barh(spans, (k - 0.4, 0.8), **_band_style(state))
        seen.update(bands)
    ax.set(ylim=(-0.6, len(CUE_NAMES) - 0.4), yticks=range(len(CUE_NAMES)), ylabel=f"face {face_id} body")
    ax.set_yticklabels([name.replace("_", " ") for name in CUE_NAMES], fontsize=7)
    handles = [Patch(**_band_style(state), label=STATE_MEANINGS[state]) for state in STATE_COLORS if state in seen]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)


def _band_style(state: str) -> dict:
    """A known state filled with its colour; unknown hatched, so it never reads as a pale state."""
    if state == "unknown":
        return {"facecolor": "white", "edgecolor": "#bdbdbd", "hatch": "///", "lw": 0}
    return {"facecolor": STATE_COLORS.get(state, "#7f7f7f"), "lw": 0}
