"""What asking the second opinion less costs: one recording analysed as `fercam analyze` does, with the shipped
`RefreshRule`, with each rule given by `--rule FIELD=VALUE` (the shipped one with that field changed) and with the
second opinion on every face of every frame (the app's views in all of them), in alternating rounds (the machine is
shared). Prints each rule's label agreement with every-frame reading (per face and per frame), how often the zoo
model ran and why, frames per second and CPU ms per frame.

    PYTHONPATH=. python tools/second_opinion_refresh.py [CLIP] [--rounds N] [--rule close_every_s=0.1 ...]
    (default clip ../shared/media/fer_woman2.mp4)
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from fercam.apps.bench.stages import profile_analyze
from fercam.refresh import DEFAULT_REFRESH

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


def main(argv: list[str]) -> int:
    clip = next((a for a in argv if not a.startswith("--") and not a.isdigit() and "=" not in a), str(CLIP))
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 1
    # The reference reads the second opinion on every frame with the app's own views, so only the rule differs.
    rules = {"every frame": replace(DEFAULT_REFRESH, every_s=0.0), "shipped": "shipped"}
    for field, value in (argv[i + 1].split("=") for i, a in enumerate(argv) if a == "--rule"):
        rules[f"{field}={value}"] = replace(DEFAULT_REFRESH, **{field: float(value)})
    runs: dict[str, list] = {name: [] for name in rules}
    for _ in range(rounds):
        for name, refresh in rules.items():
            runs[name].append(labelled(clip, refresh))
    every = runs["every frame"][0][1]
    result = {"clip": clip, "frames": len(every), "rules": {}}
    for name, done in runs.items():
        rule = done[0][1]
        pairs = [(a, b) for i in every for a, b in zip(every[i], rule.get(i, ())) if a[0] == b[0]]
        result["rules"][name] = {
            "face_label_agreement": round(sum(a == b for a, b in pairs) / max(1, len(pairs)), 4),
            "frame_label_agreement": round(sum(every[i] == rule.get(i) for i in every) / max(1, len(every)), 4),
            "runs": [profile for profile, _ in done],
        }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
