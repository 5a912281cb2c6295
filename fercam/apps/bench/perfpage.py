"""docs/PERFORMANCE.md from `fercam bench --matrix`: the machine named, each scenario against its goals."""

from __future__ import annotations

import os
import re


def machine() -> str:
    """CPU model, cores and the instruction sets that decide LiteRT's speed (AVX2, AVX-512, VNNI)."""
    import platform

    model, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    model = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    present = [f for f in wanted if f in flags] or ["(flags not readable here)"]
    absent = [f for f in wanted if flags and f not in flags]
    return f"{model}, {os.cpu_count()} cores; has {' '.join(present)}" + (
        f"; lacks {' '.join(absent)}" if absent else ""
    )


MATRIX_COLUMNS = [
    ("output_fps", "output fps"),
    ("latency_p95_ms", "latency p95 ms"),
    ("analysis_hz", "boxes Hz"),
    ("emotion_refresh_hz_per_face", "emotion Hz per face"),
    ("cpu_cores", "CPU cores"),
    ("first_frame_s", "first frame s"),
    ("first_annotated_s", "first annotated s"),
    ("rss_mb", "peak RSS MB"),
]


def _cell(result: dict, key: str) -> str:
    mark = {True: " ✓", False: " ✗"}.get(result["goals_met"].get(key), "")
    return f"{result[key]}{mark}"


def performance_page(matrix: list[dict], model: dict, soak: dict | None, command: str, previous: str = "") -> str:
    """docs/PERFORMANCE.md: the machine, the scenarios against their goals, the model, the soak; then the `##`
    sections of the `previous` page that this run does not measure (the last soak when there is no new one,
    hand-kept measurements), as they were."""
    lines = [
        "# Performance",
        "",
        f"Measured on **{machine()}**, by `{command}` (regenerates this page).",
        "Each scenario ran in its own process: the real live pipeline on `fer_woman2.mp4` replayed as a 30 fps",
        "camera (tiled for several faces), through the real `pyvirtualcam.Camera` into a counting backend.",
        "✓ / ✗: the issue's goal met or missed. CPU cores = CPU seconds per wall second of the whole process,",
        "clip decoding included.",
        "",
        "| size | faces | " + " | ".join(title for _, title in MATRIX_COLUMNS) + " | CPU by stage |",
        "|---|---|" + "---|" * len(MATRIX_COLUMNS) + "---|",
    ]
    for r in matrix:
        stages = ", ".join(f"{k} {v}" for k, v in r["cpu_cores_by_stage"].items())
        cells = " | ".join(_cell(r, key) for key, _ in MATRIX_COLUMNS)
        lines.append(f"| {r['size']} | {r['faces']} | {cells} | {stages} |")
    lines += ["", f"Emotion model alone (`fercam bench --model`): {model['ms_per_face']} ms a face (both views),"]
    lines += [f"{model['file_mb']} MB, first load {model['load_s']} s. The voice model: `fercam bench --voice`."]
    lines += ["Offline analysis (`fercam analyze`) per stage: `fercam bench --analyze CLIP`; against the `fer`"]
    lines += ["package: `tools/compare_fer.py` (tools/README.md); on Ray: docs/CLUSTER.md."]
    if soak:
        lines += ["", f"## Soak: {soak['seconds']:.0f} s at {soak['size']}, one face", ""]
        lines += [f"{soak['frames_sent']} frames sent; RSS {soak['rss_mb_after_warmup']} MB after warm-up, "]
        lines += [
            f"{soak['rss_mb_end']} MB at the end ({soak['rss_growth_pct']:+.2f}%); output {soak['fps_start']} fps "
        ]
        lines += [f"in the first interval, {soak['fps_end']} fps in the last."]
    kept = [part for part in re.split(r"(?m)^(?=## )", previous) if part.startswith("## ")]
    kept = [part.rstrip("\n") for part in kept if not (soak and part.startswith("## Soak"))]
    return "\n".join(lines + [f"\n{part}" for part in kept]) + "\n"
