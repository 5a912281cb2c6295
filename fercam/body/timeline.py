"""`fercam analyze` outputs for the body cues: body_timeline.csv and the cue panels of timeline.png."""

from __future__ import annotations

import csv
from pathlib import Path

from fercam.body.cues import CUE_NAMES, BodyCues
from fercam.body.reader import BodyCueReader
from fercam.types import Analysis, Frame

BODY_COLUMNS = ["time_s", "frame", "face_id", *(c for name in CUE_NAMES for c in (name, f"{name}_confidence"))]
STATE_COLORS = {  # matplotlib colours: what stands out is strong, the unremarkable pale, unknown near white
    "yes": "#d62728",
    "in": "#ff7f0e",
    "back": "#9467bd",
    "open": "#2ca02c",
    "closed": "#8c564b",
    "nod": "#1f77b4",
    "shake": "#e377c2",
    "moving": "#bcbd22",
    "no": "#c7d7c7",
    "upright": "#c7d7c7",
    "neutral": "#c7d7c7",
    "still": "#c7d7c7",
    "unknown": "#f2f2f2",
}


class BodyTimelineWriter:
    """Runs the body-cue stage on each analysis; one CSV row per face per pose run, flushed as it goes."""

    def __init__(self, path: Path, reader: BodyCueReader | None = None) -> None:
        self.reader = reader or BodyCueReader()
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
        for (t, body), nxt in zip(samples, samples[1:] + [None]):
            state = getattr(body, name).state
            width = (nxt[0] - t) if nxt else (t - samples[-2][0] if len(samples) > 1 else 0.3)
            ax.broken_barh([(t, width)], (k - 0.4, 0.8), color=STATE_COLORS.get(state, "#7f7f7f"))
            seen.add(state)
    ax.set(ylim=(-0.6, len(CUE_NAMES) - 0.4), yticks=range(len(CUE_NAMES)), ylabel=f"face {face_id} body")
    ax.set_yticklabels([name.replace("_", " ") for name in CUE_NAMES], fontsize=7)
    handles = [Patch(color=color, label=state) for state, color in STATE_COLORS.items() if state in seen]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6)
