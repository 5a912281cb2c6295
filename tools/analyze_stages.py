"""Where `fercam analyze` spends its time on one input: ms per frame for decode, detection,
classification (crop + model), tracking, overlay and writing annotated.mp4, on one thread of work.

    python tools/analyze_stages.py [CLIP]      (default ../shared/media/fer_woman2.mp4)

Feeds the capacity plan in docs/CLUSTER.md.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from fercam.annotate import annotate
from fercam.pipeline import face_crops, make_face_reader
from fercam.settings import Settings
from fercam.sinks import VideoFileSink
from fercam.sources import open_source
from fercam.types import Analysis


def main(clip: str) -> dict:
    settings = Settings()
    analyzer = make_face_reader(settings)
    source = open_source(clip)
    spent: dict[str, float] = defaultdict(float)
    frames = 0

    def timed(stage, call, *args):
        start = time.perf_counter()
        value = call(*args)
        spent[stage] += time.perf_counter() - start
        return value

    with tempfile.TemporaryDirectory() as tmp:
        sink = VideoFileSink(Path(tmp) / "annotated.mp4", fps=source.fps)
        while (frame := timed("decode", source.read)) is not None:
            detections = timed("detect", analyzer.detect, frame)
            gray = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
            crops = face_crops(gray, [d.box for d in detections])
            probs = timed("classify", analyzer.classifier.predict_faces, crops) if crops else np.zeros((0, 7))
            faces = timed("track", analyzer.tracker.update, detections, probs, frame.timestamp)
            image = timed("overlay", annotate, frame.image, Analysis(frame.index, frame.timestamp, faces), settings)
            timed("write", sink.send, image)
            frames += 1
        sink.close()
    return {"clip": clip, "frames": frames, "ms_per_frame": {k: round(v * 1000 / frames, 2) for k, v in spent.items()}}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1] if len(sys.argv) > 1 else "../shared/media/fer_woman2.mp4"), indent=2))
