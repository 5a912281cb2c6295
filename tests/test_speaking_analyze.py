"""Who is speaking in `fercam analyze`: a 2x2 GRID gallery with sound and a clip without sound through the real CLI
(timeline.csv's `speaking`, voice_timeline.csv's `face_id` and person reading, summary.json), and the mouth's gate
on a sound with silences."""

from __future__ import annotations

import csv
import json
import subprocess
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import MEDIA, requires_system_packages
from speaking_galleries import GRID, TURN_S, build_gallery

from fercam.apps.analyze.speakers import speaking_problem
from fercam.pictures import ImageSource
from fercam.types import EMOTIONS, Box

TILES = ["lbbc2a", "pwij3p", "sbia1a", "bbaf2n"]  # four people; brbk7n is heard but never shown
SOUNDS = [TILES[2], "brbk7n", TILES[0]]  # a shown speaker, a voice from off screen, another shown speaker
SPEAKER = [2, None, 0]  # the tile that speaks in each turn


def read_csv(path) -> list[dict]:
    with path.open(newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    """The gallery (9 s) and a GRID clip without its sound, analysed in one `fercam analyze` run; every 2nd frame
    (12.5 a second, enough for the lips) and no video, to keep the suite quick."""
    if not GRID.is_dir():
        pytest.skip(f"the GRID clips are not at {GRID} (../shared/media/grid; FERCAM_SHARED names another place)")
    requires_system_packages("ffmpeg")
    from fercam.apps.cli import main

    folder = tmp_path_factory.mktemp("speaking")
    gallery = build_gallery(folder / "gallery.mp4", TILES, SOUNDS)
    silent = folder / "silent.mp4"
    command = ["ffmpeg", "-v", "error", "-i", str(GRID / "lbax4n.mpg"), "-an", "-c:v", "libx264", str(silent)]
    subprocess.run(command, check=True, timeout=60)
    out = folder / "out"
    args = ["analyze", str(gallery), str(silent), "-o", str(out), "--every", "2", "--no-video", "--jobs", "1"]
    assert main(args) == 0
    return out


def tiles_of(rows: list[dict]) -> dict[str, int]:
    """Each face id's tile (0 top left .. 3 bottom right), from where its boxes are."""
    centres = {}
    for row in rows:
        centres.setdefault(row["face_id"], []).append(
            ((float(row["x1"]) + float(row["x2"])) / 2, (float(row["y1"]) + float(row["y2"])) / 2)
        )
    middles = {face: np.mean(points, axis=0) for face, points in centres.items()}
    return {face: int(x >= 360) + 2 * int(y >= 288) for face, (x, y) in middles.items()}


def test_the_face_that_speaks_has_a_high_speaking_and_the_others_a_low_one(analysed):
    rows = read_csv(analysed / "gallery" / "timeline.csv")
    tiles = tiles_of(rows)
    assert sorted(tiles.values()) == [0, 1, 2, 3]
    means = np.zeros((len(SOUNDS), 4))
    for k in range(len(SOUNDS)):
        for face, tile in tiles.items():
            turn = [r for r in rows if r["face_id"] == face and k * TURN_S <= float(r["time_s"]) < (k + 1) * TURN_S]
            means[k, tile] = np.mean([float(r["speaking"]) for r in turn])
    assert np.all((means >= 0) & (means <= 1))
    for k, speaker in enumerate(SPEAKER):
        others = np.delete(means[k], speaker) if speaker is not None else means[k]
        assert others.max() <= 0.2, (k, means.round(3))  # nor any face at all for the voice from off screen
        if speaker is not None:  # the bar: >= 0.3 and at least twice any other face's
            assert means[k, speaker] >= 0.3 and means[k, speaker] >= 2 * others.max(), (k, means.round(3))


def test_each_voice_window_goes_to_the_face_that_spoke_and_the_voice_from_off_screen_to_nobody(analysed):
    tiles = tiles_of(read_csv(analysed / "gallery" / "timeline.csv"))
    windows = read_csv(analysed / "gallery" / "voice_timeline.csv")
    for k, speaker in enumerate(SPEAKER):
        inside = [w for w in windows if k * TURN_S <= float(w["start_s"]) and float(w["end_s"]) <= (k + 1) * TURN_S]
        owners = {tiles[w["face_id"]] if w["face_id"] else None for w in inside if w["speech"] == "1"}
        # a turn's first window may go to nobody: its face is judged once it has talked a moment
        assert speaker in owners and owners <= {speaker, None}, (k, inside)
    for w in windows:
        owned = bool(w["face_id"])
        assert owned <= (w["speech"] == "1")  # a window without speech belongs to nobody
        assert {bool(w["person_emotion"]), bool(w["person_confidence"]), w["disagree"] in ("0", "1")} == {owned}
        if owned:
            assert w["person_emotion"] in EMOTIONS and 1 / len(EMOTIONS) <= float(w["person_confidence"]) <= 1


def test_the_summary_gives_each_face_its_speaking_time_its_voice_and_its_person_reading(analysed):
    summary = json.loads((analysed / "gallery" / "summary.json").read_text())
    rows = read_csv(analysed / "gallery" / "timeline.csv")
    tiles = tiles_of(rows)
    windows = read_csv(analysed / "gallery" / "voice_timeline.csv")
    speaking = summary["speaking"]
    assert speaking["judged"] and speaking["frames"] == len({r["time_s"] for r in rows}) == (summary["frames"] + 1) // 2
    assert 0 < speaking["frames_with_mouths_measured"] <= speaking["frames"] and speaking["cpu_ms_per_frame"] > 0
    for face, record in summary["faces"].items():
        owned = [w for w in windows if w["face_id"] == face]
        if tiles[face] in SPEAKER:  # a GRID sentence is about 1.5 s of a 3-s clip
            assert 0.5 <= record["speaking_s"] <= TURN_S and record["voice"]["speech_windows"] == len(owned) > 0
            assert set(record["voice"]["share_of_speech"]) >= set(EMOTIONS)
            assert record["person"]["emotion"] in EMOTIONS and isinstance(record["person"]["disagree"], bool)
        else:
            assert record["speaking_s"] < 0.3 and record["voice"] is None and record["person"] is None and not owned


def test_a_clip_without_sound_leaves_speaking_empty_and_says_why(analysed):
    rows = read_csv(analysed / "silent" / "timeline.csv")
    assert rows and {r["speaking"] for r in rows} == {""}
    summary = json.loads((analysed / "silent" / "summary.json").read_text())
    assert summary["speaking"] == {"judged": False, "reason": "no sound track"}
    assert all(face["speaking_s"] is None and face["voice"] is None for face in summary["faces"].values())
    assert not (analysed / "silent" / "voice_timeline.csv").exists()


def test_speaking_is_not_judged_from_pictures_streams_or_too_few_frames_a_second():
    clip = SimpleNamespace(source=object(), fps=25.0)
    assert speaking_problem("rtsp://camera/live", clip, 1) == "a stream's sound is not read"
    photo = SimpleNamespace(source=ImageSource(MEDIA / "fer_justin.jpg"), fps=1.0)
    assert speaking_problem(str(MEDIA / "fer_justin.jpg"), photo, 1) == "pictures have no sound"
    assert speaking_problem(str(GRID / "lbax4n.mpg"), clip, 2) == ""  # 12.5 frames a second
    assert "8.3 analysed frames a second" in speaking_problem(str(GRID / "lbax4n.mpg"), clip, 3)


class TimeMouth:
    """A mouth meter that reads a face's opening off the frame's time (the test's "image"), counting its calls."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def measure(self, image, boxes):
        t = float(image[0])
        self.calls.append(t)
        return {face: 0.2 + 0.05 * np.sin(2 * np.pi * 4.5 * t + face) for face in boxes}


def test_the_mouths_are_measured_only_near_speech_and_the_readings_are_those_of_every_frame(tmp_path):
    if not GRID.is_dir():
        pytest.skip(f"the GRID clips are not at {GRID}")
    requires_system_packages("ffmpeg")
    from fercam.speaking.attribution import SpeakerAttributor
    from fercam.speaking.clip import MOUTH_AFTER_S, MOUTH_BEFORE_S, SpeakingStream
    from fercam.speaking.voice_activity import VoiceActivity
    from fercam.voice.audio import load_audio

    sound = tmp_path / "quiet-speech-quiet.wav"  # 4 s of a quiet room, a sentence, 4 s of a quiet room
    room = "anoisesrc=c=pink:a=0.002:r=16000:d=4"
    graph = "[1:a]aresample=16000,aformat=channel_layouts=mono[s];[0:a][s][2:a]concat=n=3:v=0:a=1"
    command = ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", room, "-i", str(GRID / "lbax4n.mpg")]
    command += ["-f", "lavfi", "-i", room, "-filter_complex", graph, "-ac", "1", str(sound)]
    subprocess.run(command, check=True, timeout=60)
    meter, boxes = TimeMouth(), {1: Box(0, 0, 10, 10), 2: Box(20, 0, 30, 10)}
    stream = SpeakingStream(sound, meter)
    times = np.arange(0, 11, 1 / 25)
    gated = [stream.judge(t, np.array([t]), boxes) for t in times]
    stream.close()

    every = SpeakerAttributor(VoiceActivity(keep_s=30))
    every.voice.feed(load_audio(sound), 16000)
    speech = every.voice.speech(times) > 0
    reference = [every.update(t, TimeMouth().measure(np.array([t]), boxes)).faces for t in times]
    as_array = [[list(r.values()) for r in readings] for readings in (gated, reference)]
    np.testing.assert_allclose(*as_array, atol=1e-9)
    assert max(max(r.values()) for r in gated) > 0  # the reference does find a speaker: the gate hid nothing
    first, last = times[speech][0], times[speech][-1]
    assert first > 4 and last < 7.5 and stream.measured == len(meter.calls) < 0.5 * len(times)
    assert min(meter.calls) >= first - MOUTH_BEFORE_S - 0.1 and max(meter.calls) <= last + MOUTH_AFTER_S + 0.1


def test_a_face_box_that_wavers_keeps_its_crop_and_one_that_moves_gets_a_new_one():
    from fercam.speaking.lips import steady

    held = Box(127, 106, 250, 273)  # the tracker's box of a still GRID face and its wavering (measured)
    assert steady(held, Box(132, 105, 251, 268)) is held and steady(None, held) is held
    moved, grown = Box(157, 106, 280, 273), Box(117, 96, 260, 300)
    assert steady(held, moved) is moved and steady(held, grown) is grown
