"""Voice training tools: data folders with a labels CSV, speaker-independent splits, calibration, augmentation."""

from __future__ import annotations

import csv
import wave
from pathlib import Path

import numpy as np
import pytest

from fercam.training.data import DataError
from fercam.training.voice_augment import EFFECTS, augment, change_gain, phone_codec
from fercam.training.voice_data import find_corpora, load_speech
from fercam.training.voice_eval import confidence_threshold, fit_temperature, scores, splits
from fercam.voice.calibration import temperature_scale

SPEECH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


def _tone(seconds: float, hz: float = 220.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.3 * np.sin(2 * np.pi * hz * t) * (1 + np.sin(2 * np.pi * 3 * t)) / 2).astype(np.float32)


def _wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes((samples * 32767).astype(np.int16).tobytes())


def _recordings(folder: Path, rows: list[tuple[str, str, str]]) -> Path:
    """A folder of wav files and a labels.csv (file, label, speaker) like RAVDESS's."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, (name, _, _) in enumerate(rows):
        _wav(folder / name, _tone(1.0 + 0.5 * i, 150 + 40 * i))
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label", "speaker", "notes"])
        writer.writerows([*row, "x"] for row in rows)
    return folder


def test_a_folder_with_a_labels_csv_is_a_corpus(tmp_path):
    rows = [("a.wav", "happy", "ann"), ("b.wav", "2", "ann"), ("c.wav", "-1", "bob"), ("d.wav", "neutral", "bob")]
    folder = _recordings(tmp_path / "mine", rows)
    data = load_speech(folder)
    assert data.labels.tolist() == [3, 2, 6] and data.speakers.tolist() == ["ann", "ann", "bob"]
    assert data.corpora == ["mine"] and data.clips[0].dtype == np.int16 and len(data.clips[1]) == 24000
    assert set(find_corpora(tmp_path)) == {"mine"}  # the parent folder finds it too
    (folder / "labels.csv").write_text("file,label,speaker\na.wav,joy,ann\n")
    with pytest.raises(DataError, match="labels.csv:2: label 'joy'"):
        load_speech(folder)
    (folder / "labels.csv").write_text("file,emotion\na.wav,happy\n")
    with pytest.raises(DataError, match="needs the columns file, label, speaker"):
        load_speech(folder)
    (folder / "labels.csv").write_text("file,label,speaker\nmissing.wav,happy,ann\n")
    with pytest.raises(DataError, match="missing.wav: no such file"):
        load_speech(folder)
    with pytest.raises(DataError, match="not a speech-data folder"):
        load_speech(tmp_path / "nothing")


def test_splits_hold_out_speakers_and_corpora(tmp_path):
    _recordings(tmp_path / "one", [(f"{i}.wav", str(i % 7), f"s{i % 3}") for i in range(6)])
    _recordings(tmp_path / "two", [(f"{i}.wav", str(i % 7), f"t{i % 2}") for i in range(4)])
    data = load_speech(tmp_path)
    folds = splits(data)
    loso = [f for f in folds if f.protocol == "loso"]
    assert len(loso) == 5 and sum(f.test.sum() for f in loso) == len(data)  # every clip held out once
    assert all(len(set(data.voices[f.test])) == 1 for f in loso)
    loco = [f for f in folds if f.protocol == "loco"]
    assert [f.held_out for f in loco] == ["one", "two"] and all((data.corpus[f.test] == f.held_out).all() for f in loco)
    grouped = [f for f in splits(data, ("loso",), groups=2) if f.held_out.startswith("one")]
    assert len(grouped) == 2 and sorted(len(set(data.speakers[f.test])) for f in grouped) == [1, 2]


def test_shared_corpora_load_with_ravdess():
    if not (SPEECH_DIR / "ravdess" / "labels.csv").is_file():
        pytest.skip(f"shared speech data missing: {SPEECH_DIR} (see ../shared/data/speech/README.md)")
    corpora = find_corpora(SPEECH_DIR)
    assert {"emodb", "savee", "ravdess"} <= set(corpora)
    data = load_speech(SPEECH_DIR, ("ravdess",))
    assert len(data) == 1080 and len(set(data.speakers)) == 18 and np.bincount(data.labels).tolist()[-1] == 216


def test_temperature_and_threshold_come_from_held_out_predictions():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 7, 4000)
    logits = rng.normal(0, 1, (4000, 7))
    logits[np.arange(4000), labels] += 1.5
    true_probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    sampled = np.array([rng.choice(7, p=p) for p in true_probs])  # labels drawn from the true probabilities
    overconfident = temperature_scale(true_probs, 1 / 3)  # a model three times too sure of itself
    temperature = fit_temperature(np.log(overconfident), sampled)
    assert temperature == pytest.approx(3.0, rel=0.15)
    np.testing.assert_allclose(temperature_scale(overconfident, temperature), true_probs, atol=0.05)
    confidence = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    correct = np.array([1, 1, 0, 1, 0, 0], bool)
    assert confidence_threshold(confidence, correct, 0.75) == 0.6  # top 4: 3 of 4 right
    assert confidence_threshold(confidence, np.zeros(6, bool), 0.5) == 1.0  # never sure enough


def test_scores_are_unweighted_average_recall():
    labels = np.array([0, 0, 0, 0, 1, 1])
    probs = np.eye(7)[[0, 0, 0, 0, 0, 1]]
    result = scores(probs, labels)
    assert result["accuracy"] == pytest.approx(5 / 6, abs=1e-4) and result["uar"] == 0.75
    assert result["recall"] == {"angry": 1.0, "disgust": 0.5} and result["confusion"][1][:2] == [1, 1]


def test_augmentation_keeps_length_and_is_reproducible():
    speech = _tone(2.0)
    for effect in EFFECTS:
        out = effect(speech, np.random.default_rng(1))
        assert out.shape == speech.shape and np.isfinite(out).all(), effect.__name__
        np.testing.assert_array_equal(out, effect(speech, np.random.default_rng(1)))
    assert np.abs(change_gain(speech * 3, np.random.default_rng(0), (12, 12))).max() <= 1.0
    in_band = _tone(2.0, 1000)
    spectrum = np.abs(np.fft.rfft(phone_codec(_tone(2.0, 5000) + in_band, np.random.default_rng(0))))
    freqs = np.fft.rfftfreq(32000, 1 / 16000)
    assert spectrum[freqs > 4500].max() < 0.05 * spectrum[np.abs(freqs - 1000) < 10].max()  # 5 kHz: cut, 1 kHz: kept
    assert not np.array_equal(augment(speech, np.random.default_rng(3)), speech)


def test_cli_train_voice_names_a_wrong_data_folder(tmp_path, capsys):
    from fercam.apps.cli import main

    (tmp_path / "fer2013.npz").write_bytes(b"")  # a file that is no speech archive
    assert (
        main(["train", "--task", "voice", "--data", str(tmp_path / "fer2013.npz"), "--out", str(tmp_path / "r")]) == 1
    )
    assert "not a speech-data folder" in capsys.readouterr().err
