"""Pack what tools/gpu_backbones.py needs into one compact npz that travels to the GPU machine.

FER2013 as shipped in ../shared is 70 MB; the device's working tree may carry 64 MiB in all. This
keeps each distinct training face once (1,236 rows repeat another row exactly; `train_face` maps
every original row to its face, so labels, votes and soft labels stay per original row), the public
test, and the wild_faces_dev pictures cropped as the app crops a face for the classifier:
the largest MTCNN face, `pipeline.face_crops`, resized to 48 px as `emotion.to_model_input` does
(the whole picture where no face is found; `wild_found` says which). All faces travel as one
losslessly packed stack (`facecodec`, about 68% of the raw bytes): `faces_xz`, `face_counts`.

    PYTHONPATH=. .venv/bin/python tools/pack_gpu_data.py --out .gpu/fer_gpu.npz
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import cv2
import numpy as np
from facecodec import decode, encode

from fercam.training.data import load_splits, validation_split

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
VAL_SEED = 2345  # the shipped model's --seed: its validation rows stay out of everything trained on the GPU
VAL_FRACTION = 0.1


def unique_faces(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct faces in first-seen order, index of each row's face)."""
    _, first, inverse = np.unique(x.reshape(len(x), -1), axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first)  # keep the original order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return x[first[order]], rank[inverse.ravel()].astype(np.int32)


def wild_crops(folder: Path) -> tuple[np.ndarray, ...]:
    """(48x48 grey crops, labels, found-a-face flags, file names, persons) of wild_faces_dev."""
    import fercam
    from fercam.emotion import to_model_input
    from fercam.pipeline import face_crops

    detector = fercam.load_detector("mtcnn")
    with (folder / "labels.csv").open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    faces, found = [], []
    for row in rows:
        image = cv2.imread(str(folder / "images" / row["file"]), cv2.IMREAD_COLOR)
        boxes = [d.box for d in detector.detect(image)]
        if boxes:
            largest = max(boxes, key=lambda b: b.width * b.height)
            crop = face_crops(image, [largest])[0]
        else:
            crop = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        faces.append(to_model_input([crop])[0, ..., 0].astype(np.uint8))
        found.append(bool(boxes))
    labels = np.array([int(r["label"]) for r in rows], np.int8)
    names = np.array([r["file"] for r in rows])
    persons = np.array([r["person"] for r in rows])
    return np.stack(faces), labels, np.array(found), names, persons


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(SHARED / "fer2013.npz"))
    parser.add_argument("--wild", default=str(SHARED / "wild_faces_dev"))
    parser.add_argument("--out", default=str(ROOT / ".gpu" / "fer_gpu.npz"))
    args = parser.parse_args()

    splits = load_splits(args.data)
    train, test = splits.train, splits.test
    faces, train_face = unique_faces(train.x)
    _, val_idx = validation_split(train.y, VAL_FRACTION, VAL_SEED)
    val_rows = np.zeros(len(train), bool)
    val_rows[val_idx] = True
    wild_x, wild_y, wild_found, wild_names, wild_persons = wild_crops(Path(args.wild))

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stack = np.concatenate([faces, test.x, wild_x])
    blob = encode(stack)
    assert np.array_equal(decode(blob, stack.shape), stack)
    np.savez_compressed(
        out,
        faces_xz=blob,
        face_counts=np.array([len(faces), len(test.x), len(wild_x)]),
        train_face=train_face,
        y_train=train.y.astype(np.int8),
        ferplus_train=train.votes.astype(np.int8),
        val_rows=val_rows,
        y_public=test.y.astype(np.int8),
        wild_y=wild_y,
        wild_found=wild_found,
        wild_names=wild_names,
        wild_persons=wild_persons,
    )
    assert np.array_equal(faces[train_face], train.x)
    print(
        f"{out}: {out.stat().st_size / 2**20:.1f} MiB; {len(train)} training rows as {len(faces)} distinct faces, "
        f"{val_rows.sum()} validation rows (seed {VAL_SEED}), {len(test)} public test, "
        f"{len(wild_x)} wild faces ({wild_found.sum()} with a detected face)"
    )


if __name__ == "__main__":
    main()
