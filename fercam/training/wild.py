"""The development loop on labelled photographs: folds by person or film, per-face model outputs cached, metrics.

A labelled folder is a `labels.csv` (`file,label[,person]` or `file,label,movie`, FER2013 label codes or
names) beside the pictures (in the folder or its `images/`). Every picture is read as `fercam.analyze_image`
reads it: the largest face MTCNN finds (YuNet's where it finds none, if the rule says so); a picture without
one counts as wrong. What each model says about that face (probabilities and penultimate features) is cached
per model file, so re-fitting the combination rule after swapping a model reruns only that model.
"""

from __future__ import annotations

import csv
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fercam.types import EMOTIONS

CACHE_VERSION = 3
GROUP_COLUMNS = ("person", "movie")  # what a validation split must keep on one side: a person, or a film's cast


@dataclass(frozen=True)
class PhotoSet:
    folder: Path
    files: tuple[str, ...]
    labels: np.ndarray  # (N,) FER2013 codes
    persons: tuple[str, ...] | None  # the `person` (or `movie`) column; None when the CSV has neither

    def path(self, name: str) -> Path:
        return self.folder / "images" / name if (self.folder / "images").is_dir() else self.folder / name


def read_photo_set(folder: str | Path, limit: int = 0) -> PhotoSet:
    """The pictures and labels of a labelled folder (the first `limit` only, when given); ValueError with the
    row at fault if the CSV is wrong."""
    folder = Path(folder)
    table = folder / "labels.csv" if folder.is_dir() else folder
    folder = table.parent
    if not table.is_file():
        raise ValueError(f"{folder}: no labels.csv (expected columns file,label and optionally person)")
    try:
        with table.open(newline="", encoding="utf-8-sig") as f:  # -sig: a byte-order mark is not in the header
            reader = csv.DictReader(f)
            header, rows = reader.fieldnames or [], list(reader)
    except UnicodeDecodeError as exc:
        raise ValueError(f"{table}: not UTF-8 text (byte {exc.start}): save it as UTF-8") from None
    if not {"file", "label"} <= set(header):
        raise ValueError(f"{table}: needs a header with file,label (and optionally person), not {','.join(header)}")
    if not rows:
        raise ValueError(f"{table}: a header but no pictures listed")
    labels, first = [], {}  # first: each file's line and label, for rows listing it again
    for n, row in enumerate(rows, start=2):
        label = (row["label"] or "").strip().lower()
        if label.isdigit() and int(label) < len(EMOTIONS):
            labels.append(int(label))
        elif label in EMOTIONS:
            labels.append(EMOTIONS.index(label))
        else:
            raise ValueError(f"{table}: line {n}: label {label!r} is not 0-6 or one of {', '.join(EMOTIONS)}")
        line, before = first.setdefault(row["file"], (n, labels[-1]))
        if before != labels[-1]:
            raise ValueError(f"{table}: line {n}: {row['file']} is labelled {EMOTIONS[labels[-1]]} here and "
                             f"{EMOTIONS[before]} on line {line}")  # fmt: skip
    keep = [n - 2 for n, _ in first.values()]  # a row listed twice alike counts once
    rows, labels = [rows[i] for i in keep][: limit or None], [labels[i] for i in keep][: limit or None]
    column = next((c for c in GROUP_COLUMNS if c in rows[0]), None)
    persons = tuple(row[column] or row["file"] for row in rows) if column else None
    photos = PhotoSet(folder, tuple(row["file"] for row in rows), np.array(labels, np.int64), persons)
    missing = [name for name in photos.files if not photos.path(name).is_file()]
    if missing:
        raise ValueError(f"{table}: {len(missing)} pictures not found, e.g. {missing[0]}")
    return photos


def person_folds(persons: tuple[str, ...], k: int = 5, labels: np.ndarray | None = None) -> np.ndarray:
    """A fold number for each face such that every person's faces share one fold (leave-persons-out).

    Persons go, largest first, to the fold with the fewest faces so far: folds of even size, and a person
    with a sixth of the faces fills a fold alone. With `labels`, to the fold whose load in that person's
    classes is lightest (sum over classes of (fold's count / class total) squared), so that each fold also
    gets its share of every class: a fold without the rare classes would score a rule on another mix than
    the one it was fitted on. Deterministic (ties by name), so runs agree."""
    names, index = np.unique(np.asarray(persons, dtype=str), return_inverse=True)
    labels = np.zeros(len(index), np.int64) if labels is None else np.asarray(labels)
    per_person = np.zeros((len(names), len(EMOTIONS)))
    np.add.at(per_person, (index, labels), 1)
    totals = np.maximum(per_person.sum(0), 1)
    load, fold_of = np.zeros((k, len(EMOTIONS))), np.zeros(len(names), np.int64)
    for p in sorted(range(len(names)), key=lambda p: (-per_person[p].sum(), names[p])):
        cost = (((load + per_person[p]) / totals) ** 2).sum(1)
        fold_of[p] = int(np.argmin(cost))  # argmin takes the first fold of equal cost
        load[fold_of[p]] += per_person[p]
    return fold_of[index]


def metrics(pred: np.ndarray, labels: np.ndarray) -> dict:
    """Accuracy, balanced accuracy (mean recall over the classes present), per-class recall, confusion."""
    k = len(EMOTIONS)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (labels, pred), 1)
    support = confusion.sum(1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(k), where=support > 0)
    return {
        "samples": int(len(labels)),
        "accuracy": round(float((pred == labels).mean()), 4) if len(labels) else 0.0,
        "balanced_accuracy": round(float(recall[support > 0].mean()), 4) if len(labels) else 0.0,
        "recall": {name: round(float(r), 4) for name, r in zip(EMOTIONS, recall)},
        "confusion": confusion.tolist(),
    }


def predictions(probs: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Each picture's predicted class; -1 (always wrong) where no face was found."""
    return np.where(found, np.argmax(probs, axis=1), -1)


def scored(probs: np.ndarray, found: np.ndarray, labels: np.ndarray) -> dict:
    pred = predictions(probs, found)
    out = metrics(np.where(pred < 0, (labels + 1) % len(EMOTIONS), pred), labels)  # a missing face: some wrong class
    out["no_face"] = int((~found).sum())
    return out


def _digest(*paths: Path) -> str:
    h = hashlib.sha256(str(CACHE_VERSION).encode())
    for path in paths:
        h.update(Path(path).read_bytes())
    return h.hexdigest()[:16]


def _largest(detections):
    return max(detections, key=lambda d: d.box.width * d.box.height) if detections else None


class PenultimateFeatures:
    """Our model's global-average-pooled features (its last layer's inputs) for grey face crops, the mean
    of each face and its mirror image, as the served model averages the two views. Training-time only:
    LiteRT keeps intermediate tensors only in its debugging mode."""

    LAYER = "global_average_pooling"

    def __init__(self, path: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        from fercam.litert import quiet_native_stderr

        with quiet_native_stderr():
            self._net = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
            self._net.allocate_tensors()
        self._input = self._net.get_input_details()[0]["index"]
        found = [t["index"] for t in self._net.get_tensor_details() if self.LAYER in t["name"]]
        if not found:
            raise ValueError(f"{path}: no {self.LAYER} layer to read features from")
        self._layer = found[-1]

    def __call__(self, crop: np.ndarray) -> np.ndarray:
        from fercam.emotion import to_model_input

        x = to_model_input([crop])
        views = []
        for view in (x, x[:, :, ::-1]):
            self._net.set_tensor(self._input, np.ascontiguousarray(view))
            self._net.invoke()
            views.append(self._net.get_tensor(self._layer)[0].astype(np.float32))
        return (views[0] + views[1]) / 2


def face_outputs(photos: PhotoSet, cache: Path, *, classifier_path: Path | None = None, log=print) -> dict:
    """Per picture: whether MTCNN (and YuNet, the fallback candidate) found a face, and for the largest
    one each model's probabilities (our model on the grey crop as served and on a contrast-equalised crop;
    the zoo model on the aligned face and its mirror image) and penultimate features (`*_feat`: our
    model's 256, the zoo model's 512 for each view). Cached in `cache` by model contents."""
    from fercam.detection import load_detector
    from fercam.detection.yunet import MODEL as YUNET
    from fercam.emotion import DEFAULT_MODEL, load_classifier
    from fercam.paths import model_file
    from fercam.pipeline import face_crops
    from fercam.second_opinion import SECOND_MODEL, AlignedEmotionModel, aligned_faces

    ours_path = Path(classifier_path) if classifier_path else model_file(DEFAULT_MODEL)
    detector_files = [model_file(f"mtcnn_{n}.tflite") for n in ("pnet", "rnet", "onet")] + [model_file(YUNET)]
    key = _digest(ours_path, model_file(SECOND_MODEL), *detector_files)
    names = "\n".join(photos.files).encode()
    target = Path(cache) / f"faces-{key}-{hashlib.sha256(names).hexdigest()[:12]}.npz"
    if target.is_file():
        return dict(np.load(target))
    classifier, second = load_classifier(ours_path), AlignedEmotionModel()
    ours_features = PenultimateFeatures(ours_path) if ours_path.suffix == ".tflite" else None
    detectors = {"mtcnn": load_detector("mtcnn"), "yunet": load_detector("yunet")}
    n, k = len(photos.files), len(EMOTIONS)
    out = {f"{d}_found": np.zeros(n, bool) for d in detectors}
    for d in detectors:
        for what in ("ours", "second", "second_flip"):
            out[f"{d}_{what}"] = np.full((n, k), 1 / k, np.float32)
        out[f"{d}_ours_feat"] = np.zeros((n, 256), np.float32)
        out[f"{d}_second_feat"] = np.zeros((n, 512), np.float32)
    for i, name in enumerate(photos.files):
        image = cv2.imread(str(photos.path(name)), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{photos.path(name)}: not a picture OpenCV can read")
        for d, detector in detectors.items():
            face = _largest(detector.detect(image))
            if face is None:
                continue
            out[f"{d}_found"][i] = True
            crop = face_crops(image, [face.box])
            out[f"{d}_ours"][i] = classifier.predict_faces(crop)[0]
            if ours_features is not None:
                out[f"{d}_ours_feat"][i] = ours_features(crop[0])
            aligned = aligned_faces(image, [face])[0]
            if aligned is not None:
                probs, features = second.read_aligned([aligned, aligned[:, ::-1]])  # the face and its mirror image
                out[f"{d}_second"][i], out[f"{d}_second_flip"][i] = probs
                out[f"{d}_second_feat"][i] = features[0]
        if (i + 1) % 100 == 0:
            log(f"  {i + 1} of {n} pictures read")
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **out)
    return out


def held_out_estimate(folder: Path) -> dict | None:
    """None when the shipped rule never saw this folder (a folder of another name), else the nested
    held-out estimate the rule file records for it: what the in-sample reading of its pictures flatters."""
    from fercam.combined import COMBINER
    from fercam.paths import model_file

    try:
        rule = json.loads(model_file(COMBINER).read_text(encoding="utf-8"))
        fitted_on = [Path(d).name for d in rule["fitted_on"]["data"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if Path(folder).name not in fitted_on:
        return None
    return rule.get("estimate", {}).get("nested", {}).get(Path(folder).name)


def evaluate_photos(
    folder: str | Path, out: str | Path, *, model: str | Path | None = None, limit: int = 0, log=print
) -> dict:
    """`fercam evaluate --data FOLDER`: the app's reading of each picture (`fercam.analyze_image`: the
    largest face; a picture without one counts as wrong) and, on the same faces, our FER2013 model alone;
    with a `person` column, also per fold of persons (how much the score moves from one group of people
    to another). For a folder the shipped rule was fitted on, the reading is in-sample and
    `held_out_estimate` holds the rule's nested estimate for it. metrics.json and confusion.png go to `out`."""
    from fercam import analyze_image, load_classifier
    from fercam.pipeline import face_crops
    from fercam.training.evaluate import _plot_confusion

    photos = read_photo_set(folder, limit)
    alone = load_classifier(model)  # for comparison; the reading's own first model is the shipped one
    n = len(photos.files)
    found = np.zeros(n, bool)
    reading, ours = np.zeros((n, len(EMOTIONS)), np.float32), np.zeros((n, len(EMOTIONS)), np.float32)
    for i, name in enumerate(photos.files):
        image = cv2.imread(str(photos.path(name)), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{photos.path(name)}: not a picture OpenCV can read")
        faces = analyze_image(image)
        if faces:
            face = max(faces, key=lambda f: f.box.width * f.box.height)
            found[i], reading[i] = True, face.probs
            ours[i] = alone.predict_faces(face_crops(image, [face.box]))[0]
        if (i + 1) % 100 == 0:
            log(f"  {i + 1} of {n} pictures read")
    result = {
        "data": str(folder),
        "pictures": n,
        "reading": scored(reading, found, photos.labels),
        "fer_cnn_alone": scored(ours, found, photos.labels),
        "held_out_estimate": held_out_estimate(photos.folder),
    }
    if photos.persons is not None and len(set(photos.persons)) >= 2:
        folds = person_folds(photos.persons, min(5, len(set(photos.persons))))
        result["folds"] = [
            {
                k: v
                for k, v in scored(reading[folds == f], found[folds == f], photos.labels[folds == f]).items()
                if k in ("samples", "accuracy", "balanced_accuracy")
            }
            for f in np.unique(folds)
        ]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(result, indent=2))
    _plot_confusion(np.array(result["reading"]["confusion"]), out / "confusion.png")
    return result
