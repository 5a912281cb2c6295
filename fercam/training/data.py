"""Face-emotion datasets: the shared FER2013 npz, Kaggle's fer2013.csv, or class folders.

Every loader returns the same `FaceData`: uint8 (N, 48, 48) faces and int labels in
FER2013 order, so training and evaluation never care where the data came from.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.types import EMOTIONS

SIZE = 48
# FER+ vote columns (neutral happiness surprise sadness anger disgust fear ...) -> our codes.
_FERPLUS_TO_FER = {0: 6, 1: 3, 2: 5, 3: 4, 4: 0, 5: 1, 6: 2}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp"}


class DataError(ValueError):
    """A data file or folder that cannot be read as face-emotion data."""


@dataclass(frozen=True)
class FaceData:
    """Faces with hard labels, and FER+ vote distributions when the source has them."""

    x: np.ndarray
    y: np.ndarray
    votes: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> FaceData:
        votes = None if self.votes is None else self.votes[index]
        return FaceData(self.x[index], self.y[index], votes)


@dataclass(frozen=True)
class Splits:
    train: FaceData
    test: FaceData


def load_splits(path: str | Path) -> Splits:
    """Read training and test faces from an npz, a Kaggle CSV, or a `train/`+`test/` folder."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"data not found: {path}")
    if path.is_dir():
        return _load_folders(path)
    if path.suffix == ".npz":
        return _load_npz(path)
    if path.suffix == ".csv":
        return _load_csv(path)
    raise DataError(f"unsupported data format {path.suffix!r}: use .npz, .csv or a folder")


def ferplus_distribution(votes: np.ndarray) -> np.ndarray:
    """FER+ votes (N, 10) -> probabilities (N, 7) in FER2013 order; rows without votes are NaN."""
    dist = np.zeros((len(votes), len(EMOTIONS)), np.float32)
    for src, dst in _FERPLUS_TO_FER.items():
        dist[:, dst] = votes[:, src]
    total = dist.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, dist / total, np.nan).astype(np.float32)


def validation_split(n_or_labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train_index, val_index) so that rare classes appear in both parts."""
    rng = np.random.default_rng(seed)
    train_idx, val_idx = [], []
    for label in np.unique(n_or_labels):
        idx = rng.permutation(np.flatnonzero(n_or_labels == label))
        n_val = int(round(len(idx) * fraction))
        val_idx.append(idx[:n_val])
        train_idx.append(idx[n_val:])
    return np.sort(np.concatenate(train_idx)), np.sort(np.concatenate(val_idx))


def _checked(x: np.ndarray, y: np.ndarray, source: Path) -> tuple[np.ndarray, np.ndarray]:
    if x.ndim != 3 or x.shape[1:] != (SIZE, SIZE) or len(x) != len(y) or len(y) == 0:
        raise DataError(f"{source}: expected N faces of {SIZE}x{SIZE} with N labels, got {x.shape}")
    y = y.astype(np.int64)
    if y.min() < 0 or y.max() >= len(EMOTIONS):
        raise DataError(f"{source}: labels must be 0..{len(EMOTIONS) - 1}")
    return x.astype(np.uint8), y


def _load_npz(path: Path) -> Splits:
    try:
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except Exception as exc:  # zipfile, pickle and value errors all mean "not our npz"
        raise DataError(f"{path}: not a readable .npz file ({exc})") from exc
    needed = {"x_train", "y_train", "x_public", "y_public"}
    if not needed <= arrays.keys():
        raise DataError(f"{path}: missing arrays {sorted(needed - arrays.keys())}")
    train = FaceData(*_checked(arrays["x_train"], arrays["y_train"], path), arrays.get("ferplus_train"))
    test = FaceData(*_checked(arrays["x_public"], arrays["y_public"], path), arrays.get("ferplus_public"))
    return Splits(train, test)


def _load_csv(path: Path) -> Splits:
    """Kaggle's fer2013.csv: emotion, pixels (2304 numbers), Usage (Training/PublicTest/...)."""
    rows: dict[str, tuple[list, list]] = {"train": ([], []), "test": ([], [])}
    try:
        with path.open(newline="") as fh:
            for row in csv.DictReader(fh):
                part = "train" if row["Usage"] == "Training" else "test" if row["Usage"] == "PublicTest" else None
                if part:
                    rows[part][0].append(np.array(row["pixels"].split(), np.uint8).reshape(SIZE, SIZE))
                    rows[part][1].append(int(row["emotion"]))
    except (KeyError, ValueError, UnicodeDecodeError, TypeError) as exc:
        raise DataError(f"{path}: not a fer2013.csv (columns emotion, pixels, Usage): {exc}") from exc
    if not rows["train"][0] or not rows["test"][0]:
        raise DataError(f"{path}: needs both Training and PublicTest rows")
    return Splits(*(FaceData(*_checked(np.stack(xs), np.array(ys), path)) for xs, ys in rows.values()))


def _load_folders(root: Path) -> Splits:
    """`train/<class>/*.png` and `test/<class>/*.png`, class names as in EMOTIONS."""
    parts = [root / "train", root / "test"]
    if not all(p.is_dir() for p in parts):
        raise DataError(f"{root}: expected train/<class>/ and test/<class>/ folders")
    return Splits(*(_read_class_folders(p) for p in parts))


def _read_class_folders(folder: Path) -> FaceData:
    import cv2

    images, labels = [], []
    for code, name in enumerate(EMOTIONS):
        for file in sorted((folder / name).glob("*")):
            if file.suffix.lower() in _IMAGE_SUFFIXES:
                image = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                if image is None:
                    raise DataError(f"unreadable image: {file}")
                images.append(cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA))
                labels.append(code)
    if not images:
        raise DataError(f"{folder}: no images in any of {', '.join(EMOTIONS)}")
    return FaceData(*_checked(np.stack(images), np.array(labels), folder))


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-class loss weights (n_max / n_c) ** power, normalised to mean 1 over samples: rare classes count
    more. `class_weights(y, p)[y]` are the per-sample weights."""
    counts = np.bincount(labels, minlength=len(EMOTIONS)).astype(np.float64)
    weights = (counts.max() / np.maximum(counts, 1)) ** power
    return (weights / (weights[labels].mean())).astype(np.float32)
