"""What asking the second opinion less costs: one recording analysed as `fercam analyze` does, with the shipped
`RefreshRule` and with the second opinion on every face of every frame, in alternating rounds (the machine is
shared). Prints per-frame label agreement, how often the zoo model ran, frames per second and CPU ms per frame.

    PYTHONPATH=. python tools/second_opinion_refresh.py [CLIP] [--rounds N]   (default ../shared/media/fer_woman2.mp4)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fercam.apps.bench.stages import profile_analyze

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
    clip = next((a for a in argv if not a.startswith("--") and not a.isdigit()), str(CLIP))
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 1
    runs: dict[str, list] = {"every frame": [], "refresh rule": []}
    for _ in range(rounds):
        for name, refresh in (("every frame", None), ("refresh rule", "shipped")):
            runs[name].append(labelled(clip, refresh))
    every, rule = runs["every frame"][0][1], runs["refresh rule"][0][1]
    pairs = [(a, b) for i in every for a, b in zip(every[i], rule.get(i, ())) if a[0] == b[0]]
    same_frames = sum(every[i] == rule.get(i) for i in every)
    result = {
        "clip": clip,
        "frames": len(every),
        "face_label_agreement": round(sum(a == b for a, b in pairs) / max(1, len(pairs)), 4),
        "frame_label_agreement": round(same_frames / max(1, len(every)), 4),
        "runs": {name: [profile for profile, _ in done] for name, done in runs.items()},
    }
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
