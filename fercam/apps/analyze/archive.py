"""The job-wide view of an archive run: OUT/index.csv (one row per input), OUT/summary.json and
OUT/emotion_shares.png. Each input's numbers come from its own summary.json, so inputs kept from an
earlier run and inputs analysed now are counted alike."""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

import numpy as np

from fercam.apps.analyze.inputs import Input
from fercam.apps.analyze.outputs import write_json_atomic
from fercam.apps.analyze.report import READINGS, dominant_emotion, plot_emotion_shares
from fercam.apps.analyze.results import InputResult
from fercam.files import SHARED, write_atomic

INDEX_COLUMNS = ["input", "status", "duration_s", "frames", "faces", "dominant_emotion", "error", "folder"]


def read_summary(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def emotion_seconds(summary: dict) -> np.ndarray:
    """Seconds of face time per reading (the emotions, then "unsure"), over all faces of one input; a photo's
    faces count a second each (as a picture in a folder stands for one)."""
    total = np.zeros(len(READINGS))
    for face in summary.get("faces", {}).values():
        if "share_of_time" in face:
            total += [face["share_of_time"].get(name, 0.0) * face["time_on_screen_s"] for name in READINGS]
        else:
            total[READINGS.index(face["emotion"])] += 1.0
    return total


class JobIndex:
    """The rows of index.csv, rewritten (atomically) as inputs complete so it is current while the job runs."""

    def __init__(self, out: Path, items: list[Input]) -> None:
        self.out, self.items = out, items
        self.results: dict[str, InputResult] = {}
        self.rows = {item.spec: {"input": item.spec, "status": "pending", **item.labels} for item in items}
        self.analysed: list[str] = []  # by this run, for its throughput
        self._written = 0.0

    def keep_if_complete(self, item: Input, folder: Path) -> bool:
        """Take a finished result of an earlier run as it is; False when the input must be analysed."""
        summary = read_summary(folder)
        if not summary or summary.get("input") != item.spec or summary.get("interrupted"):
            return False
        result = InputResult(item.spec, str(folder), summary.get("frames", 0), len(summary.get("faces", {})))
        result.notes.append("complete from an earlier run")
        self._set(item.spec, result, summary)
        return True

    def record(self, spec: str, result: InputResult) -> None:
        self.analysed.append(spec)
        self._set(spec, result, None if result.error else read_summary(Path(result.out_dir)))
        if time.monotonic() - self._written >= 1:  # at most once a second: an archive may list 10,000s of inputs
            self.write()

    def _set(self, spec: str, result: InputResult, summary: dict | None) -> None:
        self.results[spec] = result
        status = "failed" if result.error else "interrupted" if result.interrupted else "done"
        row = self.rows[spec]
        row.update(status=status, error=result.error, folder=result.out_dir if summary else "")
        if summary:
            seconds = emotion_seconds(summary)
            dominant = dominant_emotion(dict(zip(READINGS, seconds))) or ""
            row.update(
                duration_s=summary.get("duration_s", ""),
                frames=summary.get("frames", ""),
                faces=len(summary.get("faces", {})),
                dominant_emotion=dominant,
            )

    def counts(self) -> dict[str, int]:
        statuses = [row["status"] for row in self.rows.values()]
        done = sum(s in ("done", "interrupted") for s in statuses)
        return {"done": done, "failed": statuses.count("failed"), "remaining": statuses.count("pending")}

    def write(self) -> None:
        labels = list(dict.fromkeys(key for item in self.items for key in item.labels))
        text = io.StringIO()
        writer = csv.DictWriter(text, INDEX_COLUMNS + [k for k in labels if k not in INDEX_COLUMNS], restval="")
        writer.writeheader()
        writer.writerows(self.rows.values())
        write_atomic(self.out / "index.csv", text.getvalue(), mode=SHARED)
        self._written = time.monotonic()

    def finish(self, wall_s: float) -> dict:
        """index.csv, summary.json and the emotion-share plot for the whole job; returns the summary."""
        self.write()
        summaries = {row["input"]: read_summary(Path(row["folder"])) for row in self.rows.values() if row.get("folder")}
        seconds = sum((emotion_seconds(s) for s in summaries.values() if s), np.zeros(len(READINGS)))
        shares = seconds / seconds.sum() if seconds.sum() else seconds
        video_s = {spec: float(s.get("duration_s", 0)) for spec, s in summaries.items() if s}
        analysed_s = sum(video_s.get(spec, 0.0) for spec in self.analysed)
        summary = {
            "inputs": len(self.items),
            **self.counts(),
            "video_s": round(sum(video_s.values()), 3),
            "faces": sum(len(s.get("faces", {})) for s in summaries.values() if s),
            "emotion_seconds": {name: round(float(v), 3) for name, v in zip(READINGS, seconds)},
            "emotion_shares": {name: round(float(v), 4) for name, v in zip(READINGS, shares)},
            "this_run": {
                "analysed": len(self.analysed),
                "video_s": round(analysed_s, 3),
                "wall_s": round(wall_s, 3),
                "video_s_per_wall_s": round(analysed_s / wall_s, 3) if wall_s > 0 else 0,
            },
        }
        write_json_atomic(self.out / "summary.json", summary)
        plot_emotion_shares(dict(zip(READINGS, shares)), self.out / "emotion_shares.png", title="Emotion shares")
        return summary

    def ordered_results(self) -> list[InputResult]:
        return [self.results.get(item.spec) or InputResult(item.spec, error="not analysed") for item in self.items]
