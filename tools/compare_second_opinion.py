"""How the second opinion's runtimes compare: the zoo network as the zoo ships it (int8 ONNX on OpenCV's DNN module,
one face a call), dequantised to float32 on OpenCV (`tools/dequantize_zoo_fer.py`), and as FER Cam ships it
(float32 LiteRT, `tools/zoo_fer_to_litert.py`), one face a call or four in a batch (OpenCV; FER Cam's LiteRT model
reads one face an invoke whatever it is given, so its rows are one face a call), on 1 or 2 threads.

Reads the largest MTCNN face of every `wild_faces_dev` picture, aligned as the app aligns it, and reports per
runtime: ms per face (its probabilities and the 512 features the rule reads, one pass), the zoo model's label
agreement with the int8 graph and the largest probability difference, and the combined reading's agreement and
accuracy against the labels (with the shipped `fer_combiner.json`).

    PYTHONPATH=. python tools/compare_second_opinion.py [../shared/data/wild_faces_dev] [--json] [--litert FILE ...]

`--litert FILE` (repeatable) adds a row for another LiteRT file of the network, one face a call on one thread: a
variant `tools/zoo_fer_to_litert.py --weights` writes (float16 or int8 weights).

Needs `onnx` for the float ONNX row (as `tools/dequantize_zoo_fer.py` does). CPU milliseconds per face (process
time, both threads counted): far less sensitive to other load on a shared machine than wall time.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from fercam.combined import Combiner
from fercam.detection import load_detector
from fercam.emotion import load_classifier
from fercam.paths import model_file
from fercam.pipeline import face_crops
from fercam.second_opinion import RAF_TO_FER, AlignedEmotionModel, aligned_faces, softmax
from fercam.training.wild import read_photo_set

sys.path.insert(0, str(Path(__file__).resolve().parent))

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "wild_faces_dev"


def faces_of(folder: Path):
    """(aligned 112 px faces, our model's probabilities, labels) for the pictures where MTCNN finds a face."""
    photos, detector, ours = read_photo_set(folder), load_detector("mtcnn"), load_classifier()
    aligned, first, labels = [], [], []
    for name, label in zip(photos.files, photos.labels):
        image = cv2.imread(str(photos.path(name)), cv2.IMREAD_COLOR)
        found = detector.detect(image)
        if not found:
            continue
        face = max(found, key=lambda d: d.box.width * d.box.height)
        warped = aligned_faces(image, [face])[0]
        if warped is not None:
            aligned.append(warped)
            first.append(ours.predict_faces(face_crops(image, [face.box]))[0])
            labels.append(label)
    return aligned, np.array(first), np.array(labels)


class OpenCVModel:
    """The zoo network on OpenCV's DNN module (how FER Cam ran it before LiteRT), from an ONNX file or bytes;
    `read_aligned` as `AlignedEmotionModel`'s, the features read off its Flatten layer (its last layer's input)."""

    FEATURE_LAYER = "onnx_node!Flatten_nc_rename_95"  # the same node name in the int8 and the dequantised graph

    def __init__(self, onnx) -> None:
        self._net = cv2.dnn.readNetFromONNX(onnx)
        self._output = self._net.getLayerNames()[-1]

    def read_aligned(self, faces) -> tuple[np.ndarray, np.ndarray]:
        self._net.setInput(cv2.dnn.blobFromImages(list(faces), 1 / 127.5, (112, 112), (127.5,) * 3, swapRB=True))
        features, logits = self._net.forward([self.FEATURE_LAYER, self._output])
        return softmax(logits.astype(np.float64))[:, RAF_TO_FER], features.reshape(len(faces), -1)


def runtimes(variants: list[str]):
    """(name, model, batch, threads) in the order they are compared; the first is the reference."""
    import onnx
    from dequantize_zoo_fer import dequantize

    int8 = model_file("fer_mobilefacenet_2022july_int8.onnx")
    fp32 = np.frombuffer(dequantize(onnx.load(str(int8))).SerializeToString(), np.uint8)
    yield "int8 ONNX, OpenCV", OpenCVModel(str(int8)), 1, 1
    yield "float32 ONNX, OpenCV", OpenCVModel(fp32), 1, 1
    yield "float32 ONNX, OpenCV", OpenCVModel(fp32), 4, 1
    for batch, threads in [(1, 1), (1, 2)]:
        yield "float32 LiteRT (shipped)", AlignedEmotionModel(num_threads=threads), batch, threads
    for path in variants:
        yield f"LiteRT {Path(path).name}", AlignedEmotionModel(path), 1, 1


def timed(model, faces: list, batch: int) -> tuple[np.ndarray, float, float]:
    """Probabilities and features side by side (N, 7 + 512), and CPU and wall milliseconds per face."""
    model.read_aligned(faces[:batch])  # warm-up
    cpu, wall, out = time.process_time(), time.perf_counter(), []
    for i in range(0, len(faces), batch):
        out.append(np.hstack(model.read_aligned(faces[i : i + batch])))
    per_face = 1000 / len(faces)
    return np.concatenate(out), (time.process_time() - cpu) * per_face, (time.perf_counter() - wall) * per_face


def main(argv: list[str]) -> int:
    variants = [argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--litert"]
    folder = Path(next((a for a in argv if not a.startswith("--") and a not in variants), DATA))
    aligned, first, labels = faces_of(folder)
    combiner = Combiner.load()
    rows, reference = [], None
    for name, model, batch, threads in runtimes(variants):
        cv2.setNumThreads(threads)
        second, cpu_ms, wall_ms = timed(model, aligned, batch)
        reference = second if reference is None else reference
        probs, first_probs = second[:, :7], reference[:, :7]
        combined = combiner.combine(first, second).argmax(1)
        rows.append(
            {
                "runtime": name,
                "batch": batch,
                "threads": threads,
                "cpu_ms_per_face": round(cpu_ms, 2),
                "wall_ms_per_face": round(wall_ms, 2),
                "zoo_label_agreement": round(float((probs.argmax(1) == first_probs.argmax(1)).mean()), 4),
                "zoo_max_prob_diff": round(float(np.abs(probs - first_probs).max()), 4),
                "combined_label_agreement": round(
                    float((combined == combiner.combine(first, reference).argmax(1)).mean()), 4
                ),
                "combined_accuracy": round(float((combined == labels).mean()), 4),
            }
        )
    print(json.dumps({"faces": len(aligned), "rows": rows}) if "--json" in argv else "\n".join(map(str, rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
