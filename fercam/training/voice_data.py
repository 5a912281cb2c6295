"""Labelled speech for the voice model: the shared corpora and any folder of recordings with a labels CSV.

A speech-data folder holds corpora of two kinds, each found by its layout:

- `NAME.npz` archives (EmoDB, SAVEE; see `../shared/data/speech/README.md`);
- sub-folders with a `labels.csv` (RAVDESS, or your own recordings): columns `file` (path relative to
  the folder, any format PyAV decodes), `label` (face-class code 0..6 or its name, e.g. `happy`;
  -1 or an empty cell = no face class, skipped) and `speaker` (who speaks; splits never share one).

Passing a folder that itself holds a `labels.csv` trains on that folder alone.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fercam.training.data import DataError
from fercam.types import EMOTIONS

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "speech"
LABELS_CSV = "labels.csv"
NPZ_KEYS = ("audio", "offsets", "labels", "speakers")


@dataclass(frozen=True)
class SpeechData:
    """Labelled 16 kHz int16 clips, their speakers and corpora; clips with no face class are dropped."""

    clips: list[np.ndarray]
    labels: np.ndarray
    speakers: np.ndarray
    corpus: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def voices(self) -> np.ndarray:
        """A unique id per speaker across corpora, e.g. 'savee:KL'."""
        return np.char.add(np.char.add(self.corpus.astype(str), ":"), self.speakers.astype(str))

    @property
    def corpora(self) -> list[str]:
        return list(dict.fromkeys(self.corpus.tolist()))


def _label_code(text: str, where: str) -> int:
    """A face-class code from '3', 'happy' or '' / '-1' (no class: -1)."""
    text = text.strip().lower()
    if text in {"", "-1"}:
        return -1
    if text.lstrip("-").isdigit() and -1 <= int(text) < len(EMOTIONS):
        return int(text)
    if text in EMOTIONS:
        return EMOTIONS.index(text)
    raise DataError(f"{where}: label {text!r} is neither a code 0..{len(EMOTIONS) - 1} nor one of {EMOTIONS}")


def load_folder(folder: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """(clips, labels, speakers) of a folder with a labels CSV; unreadable files are named in the error."""
    from fercam.voice.audio import AudioError, load_audio

    table = folder / LABELS_CSV
    with table.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    missing = {"file", "label", "speaker"} - set(rows[0] if rows else {})
    if missing:
        raise DataError(f"{table}: needs the columns file, label, speaker (missing: {', '.join(sorted(missing))})")
    clips, labels, speakers = [], [], []
    for line, row in enumerate(rows, start=2):
        label = _label_code(row["label"], f"{table}:{line}")
        if label < 0:
            continue
        try:
            samples = load_audio(folder / row["file"])
        except AudioError as exc:
            raise DataError(f"{table}:{line}: {exc}") from exc
        clips.append(np.round(samples * 32767).astype(np.int16))
        labels.append(label)
        speakers.append(row["speaker"].strip())
    return clips, np.array(labels, np.int64), np.array(speakers, str)


def load_npz(path: Path) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    with np.load(path) as npz:
        audio, offsets, y, spk = (npz[k] for k in NPZ_KEYS)
    keep = np.flatnonzero(y >= 0)
    return [audio[offsets[i] : offsets[i + 1]] for i in keep], y[keep].astype(np.int64), spk[keep].astype(str)


def _is_speech_npz(path: Path) -> bool:
    """An archive with the speech layout (np.load only reads its index here)."""
    try:
        with np.load(path) as npz:
            return set(NPZ_KEYS) <= set(npz.files)
    except (OSError, ValueError, EOFError):  # not an archive, or an empty or truncated one
        return False


def find_corpora(data_dir: str | Path) -> dict[str, Path]:
    """name -> npz file or labelled folder, in name order."""
    path = Path(data_dir)
    if path.is_file() and _is_speech_npz(path):
        path = path.parent
    if (path / LABELS_CSV).is_file():
        return {path.name: path}
    found = {p.stem: p for p in path.glob("*.npz") if _is_speech_npz(p)} if path.is_dir() else {}
    found.update({p.parent.name: p.parent for p in path.glob(f"*/{LABELS_CSV}")} if path.is_dir() else {})
    if not found:
        raise DataError(
            f"{data_dir}: not a speech-data folder (no NAME.npz speech archives or folders with a {LABELS_CSV}); "
            f"voice training needs e.g. --data {DATA_DIR}"
        )
    return dict(sorted(found.items()))


def load_speech(data_dir: str | Path = DATA_DIR, corpora: tuple[str, ...] | None = None) -> SpeechData:
    """Every corpus in `data_dir` (or only `corpora`), as one `SpeechData`."""
    found = find_corpora(data_dir)
    unknown = set(corpora or ()) - set(found)
    if unknown:
        raise DataError(f"{data_dir}: no corpus named {', '.join(sorted(unknown))} (found {', '.join(found)})")
    clips, labels, speakers, corpus = [], [], [], []
    for name, path in found.items():
        if corpora and name not in corpora:
            continue
        c, y, s = load_npz(path) if path.suffix == ".npz" else load_folder(path)
        clips += c
        labels.append(y)
        speakers.append(s)
        corpus.append(np.full(len(y), name))
        log.info("%s: %d clips, %d speakers", name, len(y), len(set(s)))
    return SpeechData(clips, np.concatenate(labels), np.concatenate(speakers), np.concatenate(corpus))
