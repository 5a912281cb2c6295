"""The exports of `fercam analyze` agree with its annotated video: where the video says "unsure" about a face
or a voice, timeline.csv, voice_timeline.csv and summary.json say so too, and name no dominant emotion that
the video does not show most of the time."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from clips import write_clip

from fercam.annotate import _UNSURE, EMOTION_COLORS
from fercam.apps.analyze.analyze import analyze_inputs
from fercam.apps.analyze.outputs import LOCK_NAME
from fercam.apps.analyze.report import READINGS, TIMELINE_COLUMNS
from fercam.paths import model_file
from fercam.types import EMOTIONS

FPS = 10
# fer_woman2.mp4's frames 150-330, every third: she smiles, then her face turns and the reading goes unsure
FIRST, LAST, STEP = 150, 330, 3


def read_csv(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def make_clip(path: Path, media_dir: Path, speech: list[np.ndarray]) -> None:
    """60 frames of a face that is sometimes unsure, at 10 fps, with espeak-ng's sentences as the sound."""
    capture = cv2.VideoCapture(str(media_dir / "fer_woman2.mp4"))
    frames = []
    for i in range(LAST):
        ok, image = capture.read()
        if ok and i >= FIRST and (i - FIRST) % STEP == 0:
            frames.append(image)
    capture.release()
    audio = np.concatenate(speech)[: round(len(frames) / FPS * 16000)]
    write_clip(path, frames, audio, FPS, bit_rate=4_000_000)


@pytest.fixture(scope="module")
def exported(media_dir, spoken_clips, tmp_path_factory):
    folder = tmp_path_factory.mktemp("exports")
    make_clip(folder / "unsure.mp4", media_dir, spoken_clips)
    (result,) = analyze_inputs([str(folder / "unsure.mp4")], folder / "out", jobs=1)
    assert not result.error, result.error
    return folder / "out"


def tab_color(image: np.ndarray, row: dict) -> np.ndarray:
    """The mean colour of the label's tab, left of its text: above the box (below it for a box at the top)."""
    x1, y1, y2 = (round(float(row[k])) for k in ("x1", "y1", "y2"))
    rows = slice(y1 - 6, y1 - 1) if y1 > 40 else slice(y2 + 2, y2 + 7)
    return image[rows, x1 + 1 : x1 + 3].reshape(-1, 3).mean(axis=0)


def drawn_as(color: np.ndarray) -> str:
    """The reading whose overlay colour is nearest."""
    palette = {**{EMOTIONS[i]: c for i, c in EMOTION_COLORS.items()}, "unsure": _UNSURE}
    return min(palette, key=lambda name: np.abs(np.array(palette[name]) - color).sum())


def test_timeline_says_unsure_where_the_video_does(exported):
    folder = exported / "unsure"
    rows = read_csv(folder / "timeline.csv")
    summary = json.loads((folder / "summary.json").read_text())
    assert list(rows[0]) == TIMELINE_COLUMNS
    threshold = summary["unsure_below"]
    assert 0 < threshold < 1
    assert all(r["unsure"] == str(int(float(r["confidence"]) < threshold)) for r in rows)
    unsure = Counter(r["unsure"] for r in rows)
    assert unsure["1"] >= 5 and unsure["0"] >= 5, unsure  # the clip holds both, or it tests nothing
    capture = cv2.VideoCapture(str(folder / "annotated.mp4"))
    frames = {}
    while (image := capture.read()[1]) is not None:
        frames[len(frames)] = image
    capture.release()
    drawn = [drawn_as(tab_color(frames[int(r["frame"])], r)) for r in rows]
    said = ["unsure" if r["unsure"] == "1" else r["emotion"] for r in rows]
    assert drawn == said


def test_summary_counts_unsure_and_names_only_a_dominant_emotion(exported):
    folder = exported / "unsure"
    rows = read_csv(folder / "timeline.csv")
    (face,) = json.loads((folder / "summary.json").read_text())["faces"].values()
    said = Counter("unsure" if r["unsure"] == "1" else r["emotion"] for r in rows)
    assert face["share_of_time"] == {name: pytest.approx(said[name] / len(rows), abs=1e-4) for name in READINGS}
    (first, n), *rest = said.most_common()
    expected = first if first != "unsure" and (not rest or rest[0][1] < n) else None
    assert face["dominant_emotion"] == expected


def test_voice_summary_counts_what_the_voice_timeline_says(exported):
    if not model_file("voice_mlp.tflite").is_file():
        pytest.skip("no voice model")
    folder = exported / "unsure"
    windows = read_csv(folder / "voice_timeline.csv")
    voice = json.loads((folder / "summary.json").read_text())["voice"]
    said = Counter(w["emotion"] for w in windows)
    spoken = len(windows) - said["no speech"]
    assert voice["windows"] == len(windows) and voice["no_speech_windows"] == said["no speech"]
    assert voice["speech_windows"] == spoken and voice["unsure_windows"] == said["unsure"]
    assert said["unsure"] > spoken / 2, said  # espeak-ng's flat voices: the model is mostly unsure of them
    assert voice["dominant_emotion"] is None  # a few sure windows among many unsure ones are no dominant emotion
    assert voice["share_of_speech"]["unsure"] == pytest.approx(said["unsure"] / spoken, abs=1e-4)
    for w in windows:
        if w["emotion"] not in ("unsure", "no speech"):
            assert float(w["confidence"]) >= voice["unsure_below"]
        elif w["emotion"] == "unsure":
            assert float(w["confidence"]) < voice["unsure_below"]


def test_no_lock_is_left_behind(exported):
    assert not (exported / LOCK_NAME).exists()
    assert sorted(p.name for p in exported.iterdir()) == ["unsure"]


def test_a_photo_is_summarised_as_a_photo(media_dir, tmp_path):
    analyze_inputs([str(media_dir / "two_people.jpg")], tmp_path, jobs=1)
    folder = tmp_path / "two_people"
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["photo"] is True and "duration_s" not in summary and summary["frames"] == 1
    rows = {r["face_id"]: r for r in read_csv(folder / "timeline.csv")}
    assert set(summary["faces"]) == set(rows)
    for face_id, face in summary["faces"].items():
        row = rows[face_id]
        assert face["emotion"] == ("unsure" if row["unsure"] == "1" else row["emotion"])
        assert face["confidence"] == pytest.approx(float(row["confidence"]))
        assert set(face["probabilities"]) == set(EMOTIONS) and "time_on_screen_s" not in face
    assert (folder / "timeline.png").is_file() and not (folder / "distribution.png").exists()
    assert not (tmp_path / LOCK_NAME).exists()


def test_two_sure_voice_windows_among_nineteen_unsure_name_no_dominant_emotion():
    from fercam.apps.analyze.sound import Voice, voice_summary
    from fercam.voice.classifier import VoiceWindow

    angry = np.array([0.9, 0.02, 0.02, 0.02, 0.02, 0.01, 0.01], np.float32)
    flat = np.full(7, 1 / 7, np.float32)
    windows = [VoiceWindow(k / 2, k / 2 + 2, True, angry if k in (4, 12) else flat, k in (4, 12)) for k in range(21)]
    windows += [VoiceWindow(11.0, 13.0, False, None, False)]
    summary = voice_summary(Voice(windows, 13.0, 0.76))
    assert summary["dominant_emotion"] is None
    assert (summary["speech_windows"], summary["unsure_windows"], summary["no_speech_windows"]) == (21, 19, 1)
    assert summary["share_of_speech"]["angry"] == pytest.approx(2 / 21, abs=1e-4)
    mostly_angry = [VoiceWindow(k / 2, k / 2 + 2, True, angry, k % 3 != 0) for k in range(21)]
    assert voice_summary(Voice(mostly_angry, 12.0, 0.76))["dominant_emotion"] == "angry"  # 14 of 21 sure


@pytest.mark.parametrize(
    ("shares", "dominant"),
    [
        ({"happy": 0.4, "unsure": 0.35, "sad": 0.25}, "happy"),
        ({"happy": 0.3, "unsure": 0.6, "sad": 0.1}, None),
        ({"happy": 0.4, "sad": 0.4, "unsure": 0.2}, None),  # a tie names neither
        ({"happy": 0.5, "unsure": 0.5}, None),
        ({}, None),
    ],
)
def test_a_dominant_emotion_is_the_reading_shown_most(shares, dominant):
    from fercam.apps.analyze.report import dominant_emotion

    assert dominant_emotion(shares) == dominant
