"""What asking the second opinion less costs: one recording analysed as `fercam analyze` does, with the shipped
`RefreshRule`, with each rule given by `--rule FIELD=VALUE` (the shipped one with that field changed) and with the
second opinion on every face of every frame (the app's views in all of them), in alternating rounds (the machine is
shared). Prints each rule's label agreement with every-frame reading (per face and per frame), how often the zoo
model ran and why, frames per second and CPU ms per frame.

    PYTHONPATH=. python tools/second_opinion_refresh.py [CLIP] [--rounds N] [--rule close_every_s=0.1 ...] [--live]
    (default clip ../shared/media/fer_woman2.mp4)

`--live` replays the clip through the LIVE reader instead (its cadence, alternating views and `LIVE_REFRESH`, the
rules given change that one), analysing at most `LIVE_HZ` frames a second as the live app does, and compares the
label each face shows ("unsure" under the rule file's threshold, the default display) as well as its top emotion.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from fercam.apps.bench.stages import profile_analyze
from fercam.media import VideoReader
from fercam.pipeline import ReaderConfig, make_live_reader
from fercam.refresh import DEFAULT_REFRESH, LIVE_REFRESH
from fercam.types import Frame

CLIP = Path(__file__).resolve().parents[1].parent / "shared" / "media" / "fer_woman2.mp4"


def labelled(clip: str, refresh) -> tuple[dict, dict]:
    """The profile, and each analysed frame's (face id, top emotion) pairs."""
    labels: dict[int, tuple] = {}
    profile = profile_analyze(
        clip,
        refresh=refresh,
        on_analysis=lambda a, _f: labels.update({a.frame_index: tuple((f.id, f.top) for f in a.faces)}),
    )
    return profile, labels


LIVE_HZ = 22.0  # analyses a second live at 720p (`fercam bench`)


def live_labelled(clip: str, refresh) -> tuple[dict, dict]:
    """The LIVE reader's zoo reads and why, and each analysed frame's (face id, label shown, top emotion)."""
    reader, labels, last = make_live_reader(ReaderConfig()), {}, float("-inf")
    if refresh != "shipped":
        reader.classifier.refresh = refresh
    video = VideoReader(clip)
    for index, (image, time) in enumerate(video.frames()):
        if time - last < 1 / LIVE_HZ - 1e-6:
            continue  # the live app analyses the newest frame when it is free, about every other one
        last = time
        analysis = reader.read(Frame(image, index, time))
        labels[index] = tuple((f.id, "unsure" if f.unsure else f.top, f.top) for f in analysis.faces)
    video.close()
    reading = reader.classifier
    return {"second_reads": reading.second_reads, "reasons": reading.refresh_reasons}, labels


def main(argv: list[str]) -> int:
    clip = next((a for a in argv if not a.startswith("--") and not a.isdigit() and "=" not in a), str(CLIP))
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 1
    # The reference reads the second opinion on every frame with the app's own views, so only the rule differs.
    live = "--live" in argv
    shipped, read = (LIVE_REFRESH, live_labelled) if live else (DEFAULT_REFRESH, labelled)
    rules = {"every frame": replace(shipped, every_s=0.0, soonest_s=0.0, at_once=0), "shipped": "shipped"}
    for field, value in (argv[i + 1].split("=") for i, a in enumerate(argv) if a == "--rule"):
        rules[f"{field}={value}"] = replace(shipped, **{field: float(value)})
    runs: dict[str, list] = {name: [] for name in rules}
    for _ in range(rounds):
        for name, refresh in rules.items():
            runs[name].append(read(clip, refresh))
    every = runs["every frame"][0][1]
    result = {"clip": clip, "frames": len(every), "rules": {}}
    for name, done in runs.items():
        rule = done[0][1]
        pairs = [(a, b) for i in every for a, b in zip(every[i], rule.get(i, ())) if a[0] == b[0]]
        result["rules"][name] = {
            # the label: the top emotion offline; live, the label shown ("unsure" or the top emotion)
            "face_label_agreement": round(sum(a[1] == b[1] for a, b in pairs) / max(1, len(pairs)), 4),
            "frame_label_agreement": round(sum(every[i] == rule.get(i) for i in every) / max(1, len(every)), 4),
            "runs": [profile for profile, _ in done],
        }
        if live:
            result["rules"][name]["face_top_agreement"] = round(sum(a[2] == b[2] for a, b in pairs) / len(pairs), 4)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
