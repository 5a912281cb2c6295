"""`fercam bench` of this tree against another commit, in interleaved rounds, and of this tree with the live second
opinion read once a face: how far asking the second opinion less could take the live cost (#45).

    PYTHONPATH=. python tools/bench_against.py [--commit d05e78e] [--rounds 2] [--size 1920x1080 --faces 5]

The other commit is checked out in a temporary `git worktree`; each build runs `fercam bench --json` in its own
process, with its own tree first on the path and this tree's virtual environment after it (`python -S`), on the
same clip, round after round (a machine's speed drifts within minutes, so only interleaved rounds compare). "once a
face" is this tree with `LIVE_REFRESH` replaced by a rule that reads a face's second opinion when the face is new
and never again: the floor of any refresh rule. Prints each run's CPU cores, stages, second-opinion reads, p95
latency, peak memory and output rate, then each build's mean cores and its ratio to the other commit's.
docs/PERFORMANCE.md has the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT.parent / "shared" / "media" / "fer_woman2.mp4"
# the second opinion read for new faces only: no clock, no close call, no change is ever reason enough
ONCE = (
    "import sys; import fercam.refresh as r; "
    "r.LIVE_REFRESH = r.RefreshRule(every_s=1e9, ours_moved=9.0, box_moved=-1.0, turned=1e9, close=-1.0, "
    "soonest_s=0.15, at_once=1); from fercam.apps.cli import main; sys.exit(main(sys.argv[1:]))"
)


def bench(tree: Path, args: list[str], *, once: bool = False) -> dict:
    """One `fercam bench --json` run of the package in `tree`, in its own process."""
    site = sysconfig.get_paths()["purelib"]
    runner = ["-c", ONCE] if once else ["-m", "fercam"]
    command = [sys.executable, "-S", *runner, "bench", "--json", *args]
    env = {**os.environ, "PYTHONPATH": f"{tree}:{site}"}
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, env=env, timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"bench_against: {tree}: fercam bench failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commit", default="d05e78e", help="the build to compare with (before the second opinion)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--source", type=Path, default=CLIP)
    parser.add_argument("--size", default="1280x720")
    parser.add_argument("--faces", type=int, default=1)
    args = parser.parse_args()
    bench_args = ["--source", str(args.source), "--seconds", str(args.seconds), "--size", args.size]
    bench_args += ["--faces", str(args.faces)]
    with tempfile.TemporaryDirectory() as scratch:
        other = Path(scratch) / "other"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(other), args.commit], check=True
        )
        try:
            cores: dict[str, list[float]] = {args.commit: [], "this": [], "once a face": []}
            for round_ in range(args.rounds):
                for name, tree, once in (
                    (args.commit, other, False),
                    ("this", ROOT, False),
                    ("once a face", ROOT, True),
                ):
                    result = bench(tree, bench_args, once=once)
                    cores[name].append(result["cpu_cores"])
                    reads = result.get("second_opinion_hz_per_face")
                    print(
                        f"round {round_ + 1} {name:12s} {args.size} {args.faces} face(s): {result['cpu_cores']} of a "
                        f"core, by stage {result['cpu_cores_by_stage']}, second opinion {reads} a second a face; "
                        f"p95 latency {result['latency_p95_ms']} ms, peak RSS {result['rss_mb']} MB, "
                        f"{result['output_fps']} fps out",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=True)
    before = sum(cores[args.commit]) / args.rounds
    for name, values in cores.items():
        mean = sum(values) / len(values)
        print(f"{name:12s} mean {mean:.3f} of a core, {mean / before:.2f}x {args.commit}")


if __name__ == "__main__":
    main()
