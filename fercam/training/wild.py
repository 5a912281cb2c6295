"""The development loop on labelled photographs: folds by person, per-face model outputs cached, metrics.

A labelled folder is a `labels.csv` (`file,label[,person]`, FER2013 label codes or names) beside the
pictures (in the folder or its `images/`). Every picture is read as `fercam.analyze_image` reads it: the
largest face MTCNN finds; a picture without one counts as wrong. What each model says about that face is
cached per model file, so re-fitting the combination rule after swapping a model reruns only that model.
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from fercam.types import EMOTIONS

CACHE_VERSION = 1


@dataclass(frozen=True)
class PhotoSet:
    folder: Path
    files: tuple[str, ...]
    labels: np.ndarray  # (N,) FER2013 codes
    persons: tuple[str, ...] | None  # None when the CSV has no `person` column

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
    persons = tuple(row["person"] or row["file"] for row in rows) if "person" in rows[0] else None
    photos = PhotoSet(folder, tuple(row["file"] for row in rows), np.array(labels, np.int64), persons)
    missing = [name for name in photos.files if not photos.path(name).is_file()]
    if missing:
        raise ValueError(f"{table}: {len(missing)} pictures not found, e.g. {missing[0]}")
    return photos


def person_folds(persons: tuple[str, ...], k: int = 5) -> np.ndarray:
    """A fold number for each face such that every person's faces share one fold (leave-persons-out).

    Persons go, largest first, to the fold with the fewest faces so far: folds of even size, and a person
    with a sixth of the faces fills a fold alone. Deterministic (ties by name), so runs agree."""
    counts: dict[str, int] = {}
    for person in persons:
        counts[person] = counts.get(person, 0) + 1
    sizes, fold_of = [0] * k, {}
    for person in sorted(counts, key=lambda p: (-counts[p], p)):
        fold_of[person] = min(range(k), key=lambda f: (sizes[f], f))
        sizes[fold_of[person]] += counts[person]
    return np.array([fold_of[p] for p in persons], np.int64)


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


def face_outputs(photos: PhotoSet, cache: Path, *, classifier_path: Path | None = None, log=print) -> dict:
    """Per picture: whether MTCNN (and YuNet, the fallback candidate) found a face, and each model's
    probabilities for the largest one (our model on the grey crop as served and on a contrast-equalised
    crop; the zoo model on the aligned face and its mirror image). Cached in `cache` by model contents."""
    from fercam.combined import SECOND_MODEL, AlignedEmotionModel, aligned_faces
    from fercam.detection import load_detector
    from fercam.detection.yunet import MODEL as YUNET
    from fercam.emotion import DEFAULT_MODEL, load_classifier
    from fercam.paths import model_file
    from fercam.pipeline import face_crops

    ours_path = Path(classifier_path) if classifier_path else model_file(DEFAULT_MODEL)
    detector_files = [model_file(f"mtcnn_{n}.tflite") for n in ("pnet", "rnet", "onet")] + [model_file(YUNET)]
    key = _digest(ours_path, model_file(SECOND_MODEL), *detector_files)
    names = "\n".join(photos.files).encode()
    target = Path(cache) / f"faces-{key}-{hashlib.sha256(names).hexdigest()[:12]}.npz"
    if target.is_file():
        return dict(np.load(target))
    classifier, second = load_classifier(ours_path), AlignedEmotionModel()
    detectors = {"mtcnn": load_detector("mtcnn"), "yunet": load_detector("yunet")}
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    n, k = len(photos.files), len(EMOTIONS)
    out = {f"{d}_found": np.zeros(n, bool) for d in detectors}
    for d in detectors:
        for what in ("ours", "ours_eq", "second", "second_flip"):
            out[f"{d}_{what}"] = np.full((n, k), 1 / k, np.float32)
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
            out[f"{d}_ours_eq"][i] = classifier.predict_faces([clahe.apply(crop[0])])[0]
            aligned = aligned_faces(image, [face])[0]
            if aligned is not None:
                out[f"{d}_second"][i] = second.predict_aligned([aligned])[0]
                out[f"{d}_second_flip"][i] = second.predict_aligned([aligned[:, ::-1]])[0]
        if (i + 1) % 100 == 0:
            log(f"  {i + 1} of {n} pictures read")
    target.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(target, **out)
    return out


def evaluate_photos(
    folder: str | Path, out: str | Path, *, model: str | Path | None = None, limit: int = 0, log=print
) -> dict:
    """`fercam evaluate --data FOLDER`: the app's reading of each picture (`fercam.analyze_image`: the
    largest face; a picture without one counts as wrong) and, on the same faces, our FER2013 model alone;
    with a `person` column, also per fold of persons (how much the score moves from one group of people
    to another). metrics.json and confusion.png go to `out`."""
    import json

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
