"""What `fercam bench` holds its figures to: the issue's scenarios with their goals, the goals that hold at any
size, and each figure in words (the word when its goal is met, and when missed).

Kept apart from the measuring (`bench`) so the goals can be read, and changed, in one place: `--matrix`
checks each scenario against them, the plain report words each figure by them, and the tests read them.
"""

from __future__ import annotations

# What the live pipeline must show on a 2-core laptop (issue: light on a laptop in a call; 720p with one face
# at most 0.20 of a core, the moonshot 0.15, second opinion included).
SCENARIOS = [
    {
        "size": "1280x720",
        "faces": 1,
        "goals": {
            "output_fps": (">=", 29.5),
            "latency_p95_ms": ("<=", 10.0),
            "analysis_hz": (">=", 20.0),
            "cpu_cores": ("<=", 0.20),
        },
    },
    {
        "size": "1920x1080",
        "faces": 5,
        "goals": {"output_fps": (">=", 29.5), "emotion_refresh_hz_per_face": (">=", 10.0), "cpu_cores": ("<=", 1.0)},
    },
]
START_GOALS = {"first_frame_s": ("<=", 0.5), "first_annotated_s": ("<=", 0.5), "rss_mb": ("<=", 250.0)}
ANY_SIZE_GOALS = {"output_fps": (">=", 29.5), "latency_p95_ms": ("<=", 10.0)}  # for sizes no scenario names


def met(value, goal: tuple[str, float]) -> bool:
    op, bound = goal
    return value is not None and (value >= bound if op == ">=" else value <= bound)


def goals_for(result: dict) -> dict:
    """The goals of the scenario with the result's size and faces, else those that hold at any size."""
    scenario = next((s for s in SCENARIOS if (s["size"], s["faces"]) == (result["size"], result["faces"])), None)
    return {**(scenario["goals"] if scenario else ANY_SIZE_GOALS), **START_GOALS}


# Each figure in words: how it is written, and the word for it when its goal is met / missed.
WORDS = {
    "output_fps": ("{} fps out", "real time", "dropping frames"),
    "cpu_cores": ("{} of a core", "light", "heavy"),
    "latency_p95_ms": ("{} ms from camera to call (95% of frames)", "prompt", "late"),
    "analysis_hz": ("boxes follow faces {} times a second", "live", "lagging"),
    "emotion_refresh_hz_per_face": ("emotions read {} times a second a face", "lively", "sluggish"),
    "first_frame_s": ("first frame after {} s", "quick", "slow"),
    "first_annotated_s": ("first annotated frame after {} s", "quick", "slow"),
    "rss_mb": ("{} MB of memory at most", "small", "large"),
}
