"""Who is speaking, live: the voice badge drawn on the face that speaks (or in a corner, off screen), the events
that say so, and `fercam run --microphone` with a 2x2 gallery of GRID talking faces as the camera and its sound
as the microphone, headless and in the overlay page in a real Chromium."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import requires_system_packages
from speaking_galleries import GRID, TURN_S, build_gallery
from window_helpers import launch_browser, need_chromium, start_fercam, stop

from fercam import voice_marks
from fercam.annotate import annotate
from fercam.events import analysis_record
from fercam.settings import Settings
from fercam.speaking.attribution import Speaking
from fercam.speaking.heard import heard_fields
from fercam.types import Analysis, Box, Emotion, Face, Frame
from fercam.voice_marks import AMBER, MARK, draw_heard_voice, draw_voice_badge

TILES = ["lbbc2a", "pwij3p", "sbia1a", "bbaf2n"]  # pwij3p's and bbaf2n's voices the voice model names surely
SOUNDS = [TILES[1], TILES[1], "brbk7n", TILES[3]]  # top right twice, a voice from off screen, bottom right
WIDTH, HEIGHT = 720, 576  # the gallery's picture


def one_hot(emotion: Emotion, p: float = 0.9) -> np.ndarray:
    probs = np.full(7, (1 - p) / 6, np.float32)
    probs[emotion] = p
    return probs


FACES = (
    Face(1, Box(60, 200, 220, 380), 0.99, one_hot(Emotion.HAPPY)),
    Face(2, Box(440, 200, 600, 380), 0.99, one_hot(Emotion.HAPPY)),
)
ANALYSIS = Analysis(0, 0.0, FACES)
SETTINGS = Settings(voice=True)


def drawn(voice, speaking: Speaking | None) -> np.ndarray:
    """Where the voice was drawn: the pixels that differ from the same frame's overlays without any voice."""
    image = np.full((HEIGHT, WIDTH, 3), 127, np.uint8)
    plain = annotate(image, ANALYSIS, SETTINGS)
    heard = plain.copy()
    draw_heard_voice(heard, ANALYSIS, SETTINGS, voice, speaking)
    return heard


def changed(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return np.nonzero((a != b).any(axis=2))


def test_the_badge_and_its_mark_go_on_the_face_that_speaks_with_the_person_line():
    plain = annotate(np.full((HEIGHT, WIDTH, 3), 127, np.uint8), ANALYSIS, SETTINGS)
    angry = one_hot(Emotion.ANGRY)  # the face is happy: the person line says they disagree, in amber
    on_face = drawn(angry, Speaking(0.0, {1: 0.02, 2: 0.9}, voice=1.0))
    rows, cols = changed(on_face, plain)
    assert cols.min() >= 400 and rows.max() < 200  # above the right face's box, nowhere near the left one
    badge = on_face[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
    assert (np.abs(badge.astype(int) - MARK).sum(axis=2) < 60).sum() > 10  # the sound-wave mark
    assert (np.abs(badge.astype(int) - AMBER).sum(axis=2) < 60).sum() > 20  # "face happy / voice angry: disagree"
    agree = drawn(one_hot(Emotion.HAPPY), Speaking(0.0, {1: 0.02, 2: 0.9}, voice=1.0))
    assert not (np.abs(agree.astype(int) - AMBER).sum(axis=2) < 60).any()  # "face+voice: happy ..." in white
    unsure = drawn("unsure", Speaking(0.0, {1: 0.02, 2: 0.9}, voice=1.0))
    assert changed(unsure, plain)[0].min() > changed(on_face, plain)[0].min()  # no person line: no sure voice
    both = drawn(angry, Speaking(0.0, {1: 0.8, 2: 0.9}, voice=1.0))  # two people talking over each other
    assert changed(both, plain)[1].min() < 200 and changed(both, plain)[1].max() > 400


def test_a_voice_no_face_matches_is_said_in_the_corner_as_off_screen():
    angry = one_hot(Emotion.ANGRY)
    corner = np.full((HEIGHT, WIDTH, 3), 127, np.uint8)
    corner = annotate(corner, ANALYSIS, SETTINGS)
    expected, as_before = corner.copy(), corner.copy()
    draw_voice_badge(expected, angry, FACES, who="voice (off screen)")
    draw_voice_badge(as_before, angry, FACES)
    assert np.array_equal(drawn(angry, Speaking(0.0, {1: 0.01, 2: 0.02}, voice=1.0, off_screen=0.97)), expected)
    assert np.array_equal(drawn(angry, None), as_before)  # nobody heard lately: the corner badge as ever
    assert not np.array_equal(expected, as_before)


def test_the_corner_badge_pasted_from_its_first_drawing_is_the_badge_drawn_afresh(monkeypatch):
    rng = np.random.default_rng(0)
    left_corner = Face(3, Box(10, 40, 200, 240), 0.99, one_hot(Emotion.SAD))
    for height, width in ((576, 720), (720, 1280), (1080, 1920)):
        for voice, who in ((one_hot(Emotion.ANGRY), "voice"), ("unsure", "voice (off screen)"), ("no speech", "voice")):
            for faces in ((), FACES, (left_corner,), (left_corner, *FACES)):
                for _ in range(2):  # drawn, then pasted
                    frame = rng.integers(0, 256, (height, width, 3), np.uint8)
                    expected, pasted = frame.copy(), frame.copy()
                    with monkeypatch.context() as drawn_here:  # no pasted badge: drawn on the picture
                        drawn_here.setattr(voice_marks, "_badge", lambda *args: None)
                        draw_voice_badge(expected, voice, faces, who=who)
                    draw_voice_badge(pasted, voice, faces, who=who)
                    assert np.array_equal(pasted, expected), (height, voice, who, faces)


def test_events_say_who_speaks_and_the_person_reading():
    speaking = Speaking(0.0, {1: 0.1, 2: 0.9}, voice=1.0)
    per_face, extra = heard_fields(ANALYSIS, one_hot(Emotion.ANGRY), speaking)
    record = analysis_record(ANALYSIS, per_face, **extra)
    left, right = record["faces"]
    assert left["speaking"] == 0.1 and left["person"] is None and left["emotion"] == "happy"
    assert right["speaking"] == 0.9 and right["person"]["disagree"] and right["person"]["voice"] == "angry"
    assert right["person"]["label"] == "face happy / voice angry: disagree"
    assert record["voice"] == {"emotion": "angry", "confidence": 0.9, "off_screen": False}
    per_face, extra = heard_fields(ANALYSIS, "unsure", Speaking(0.0, {1: 0.0, 2: 0.0}, voice=1.0, off_screen=0.9))
    assert extra["voice"] == {"emotion": "unsure", "confidence": None, "off_screen": True}
    assert all(f["person"] is None for f in per_face.values())
    not_yet = Speaking(0.0, {1: 0.0, 2: 0.0}, voice=1.0, off_screen=1.0, match={1: 0.1, 2: float("nan")})
    assert not heard_fields(ANALYSIS, "unsure", not_yet)[1]["voice"]["off_screen"]  # face 2 not judged yet


def test_mouths_are_measured_only_after_speech_at_most_15_times_a_second_on_the_listeners_one_detector():
    from fercam.live.speaking import LiveSpeaking
    from fercam.voice.audio import load_audio
    from fercam.voice.listener import MicrophoneListener

    clip = GRID / "pwij3p.mpg"
    if not clip.is_file():
        pytest.skip(f"the GRID clips are not at {GRID}")
    speaking = LiveSpeaking()  # not started: what `offer` hands to its thread is counted by the slot's version
    slot = speaking._offered
    frames = [Frame(np.zeros((8, 8, 3), np.uint8), k, k / 30) for k in range(90)]  # a 30 fps camera
    for frame in frames[:30]:
        speaking.offer(ANALYSIS, frame)
    assert slot.version == 0  # nobody heard: no mouth is measured
    listener = MicrophoneListener(speech=speaking.voice)  # the listener judges the sound with the same detector
    listener.push(load_audio(clip)[: 16000 * 2])
    listener.listen()
    assert speaking.voice.activity.heard_speech() and listener.update() is not None
    for frame in frames[30:60]:
        speaking.offer(ANALYSIS, frame)
    assert 13 <= slot.version <= 15  # every other frame of a second at 30 fps
    before = slot.version
    speaking.offer(Analysis(61, 61 / 30, ()), frames[61])  # due, but with no face there is nothing to measure
    speaking.offer(Analysis(63, 63 / 30, ()), frames[63])
    assert slot.version == before
    speaking.offer(ANALYSIS, frames[65])
    assert slot.version == before + 1


def test_a_missing_or_soundless_microphone_clip_is_one_line_and_exit_1(media_dir, tmp_path):
    for clip, why in ((tmp_path / "nope.mp4", "no such file"), (media_dir / "fer_woman2.mp4", "has no audio track")):
        args = ["run", "--no-tray", "--source", str(media_dir / "fer_woman2.mp4"), "--microphone", str(clip)]
        done = subprocess.run([sys.executable, "-m", "fercam", *args], capture_output=True, text=True, timeout=60)
        assert done.returncode == 1 and done.stderr == f"fercam: error: --microphone {clip}: {why}\n", done.stderr


def test_bench_with_a_microphone_clip_measures_who_is_speaking_too(capsys):
    from fercam.apps.bench.bench import format_report
    from fercam.apps.cli import main

    clip = GRID / "pwij3p.mpg"
    if not clip.is_file():
        pytest.skip(f"the GRID clips are not at {GRID}")
    assert (
        main(
            ["bench", "--json", "--source", str(clip), "--size", "640x480", "--seconds", "4", "--microphone", str(clip)]
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["microphone"] == str(clip) and result["mouth_frames_per_s"] > 0 and result["speaking_cpu_cores"] > 0
    assert f"microphone {clip}: who-is-speaking " in format_report(result)
    assert main(["bench", "--source", str(clip), "--microphone", str(clip.with_suffix(".wav"))]) == 1
    assert capsys.readouterr().err == f"fercam: error: --microphone {clip.with_suffix('.wav')}: no such file\n"


# --- live, with the gallery's sound as the microphone -------------------------------------------------------


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    if not GRID.is_dir():
        pytest.skip(f"the GRID clips are not at {GRID} (../shared/media/grid; FERCAM_SHARED names another place)")
    requires_system_packages("ffmpeg")
    return build_gallery(tmp_path_factory.mktemp("gallery") / "gallery.mp4", TILES, SOUNDS)


def tile_of(face: dict) -> int:
    x1, y1, x2, y2 = face["box"]
    return int((x1 + x2) / 2 >= WIDTH / 2) + 2 * int((y1 + y2) / 2 >= HEIGHT / 2)


def test_live_the_mark_lands_on_the_face_that_speaks_and_an_off_screen_voice_on_none(gallery, tmp_path):
    events = tmp_path / "events.jsonl"
    command = [sys.executable, "-m", "fercam", "run", "--no-tray", "--source", str(gallery), "--microphone"]
    command += [str(gallery), "--sink", f"file:{tmp_path / 'out.mp4'}", "--events", str(events)]
    command += ["--size", f"{WIDTH}x{HEIGHT}", "--fps", "25"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    turns: list[list[dict]] = [[] for _ in SOUNDS]
    for line in events.read_text().splitlines():
        event = json.loads(line)
        turns[min(int(event["timestamp"] // TURN_S), len(SOUNDS) - 1)].append(event)
    wrong = []
    for k, sound in enumerate(SOUNDS):
        speaker = TILES.index(sound) if sound in TILES else None
        marked = [tile_of(f) for event in turns[k] for f in event["faces"] if f["speaking"] >= 0.5]
        wrong += [(k, tile) for tile in marked if tile != speaker]
        if speaker is None:
            assert sum(e["voice"]["off_screen"] for e in turns[k]) >= 0.2 * len(turns[k]), k
        elif k:  # the first turn: the models are still loading, and a mouth is judged after a second of speech
            assert marked.count(speaker) >= 0.2 * len(turns[k]), (k, sound, len(marked), len(turns[k]))
    assert len(wrong) <= 2, wrong
    people = [f["person"] for turn in turns for event in turn for f in event["faces"] if f["person"]]
    assert len(people) >= 5 and all(p["label"].startswith(("face+voice: ", "face ")) for p in people)


def overlay_shot(page, on_face: bool) -> tuple[list, list, np.ndarray]:
    """The marks the overlay drew (one on a face, or the corner note), the faces it drew them for, and its
    screenshot, all of one drawing (it redraws every 250 ms)."""
    wanted = f"() => window.fercamOverlay.marks().some((m) => {'m.id !== null' if on_face else 'm.id === null'})"
    for _ in range(20):
        page.wait_for_function(wanted, polling=50, timeout=30000)
        before = page.evaluate("window.fercamOverlay.marks()")
        shot = page.screenshot(omit_background=True)
        marks, faces = page.evaluate("[window.fercamOverlay.marks(), window.fercamOverlay.last().faces]")
        if marks == before and any((m["id"] is not None) == on_face for m in marks):
            break
    return marks, faces, cv2.imdecode(np.frombuffer(shot, np.uint8), cv2.IMREAD_UNCHANGED)


def test_the_overlay_page_shows_the_mark_on_the_face_that_speaks_and_the_voice_off_screen(gallery, tmp_path):
    need_chromium()
    from playwright.sync_api import sync_playwright

    clip = tmp_path / "two_turns.mp4"  # the top-right face speaks for 6 s, then a voice from off screen
    subprocess.run(["ffmpeg", "-v", "error", "-i", str(gallery), "-t", "9", "-c", "copy", str(clip)], check=True)
    args = ["run", "--no-tray", "--serve", "--port", "0", "--source", str(clip), "--microphone", str(clip)]
    args += ["--sink", f"file:{tmp_path / 'out.mp4'}", "--size", f"{WIDTH}x{HEIGHT}", "--fps", "15"]
    with sync_playwright() as playwright:
        browser = launch_browser(playwright)  # before FER Cam: the clip plays from the moment it starts
        proc, url = start_fercam(args, {"FERCAM_CONFIG_DIR": str(tmp_path / "config")}, tmp_path / "fercam.log")
        try:
            control = browser.new_page(viewport={"width": 1280, "height": 900})
            control.goto(url)
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.goto(url.replace("/?", "/overlay?"))
            marks, faces, speaking = overlay_shot(page, on_face=True)
            legend = """() => [...document.querySelectorAll("#charts [data-face]")]
                .filter((chart) => chart.querySelector(".voice").textContent)
                .map((chart) => [Number(chart.dataset.face), chart.querySelector(".voice").textContent])"""
            control.wait_for_function(f"() => ({legend})().length", polling=50, timeout=10000)
            charted = control.evaluate(f"({legend})()")
            off_marks, _, off_screen = overlay_shot(page, on_face=False)
        finally:
            browser.close()
            stop(proc)
    for name, image in (("speaking", speaking), ("off_screen", off_screen)):
        cv2.imwrite(str(tmp_path / f"overlay_{name}.png"), image)
    print(f"overlay screenshots in {tmp_path}: marks {marks}, then {off_marks}")
    mark = next(m for m in marks if m["id"] is not None)
    face = next(f for f in faces if f["id"] == mark["id"])
    assert tile_of(face) == 1  # pwij3p, top right, the only face that speaks
    assert mark["text"].startswith(("face+voice: ", "face ", "speaking"))
    assert [face_id for face_id, _ in charted] == [mark["id"]]  # the chart of that face, and only its, has a voice
    assert charted[0][1].startswith(("speaking, voice ", "spoke ")), charted
    x, y, w, h = (round(v) for v in mark["rect"])
    x1, y1, x2, _ = face["box"]
    assert x < x2 and x + w > x1 and y + h <= y1 + 2  # above that face's box (moved in from the page's edge)
    region = speaking[y : y + h, x : x + w]
    assert region[:, :, 3].mean() > 100  # drawn, whole, on the page
    green = np.abs(region[:, :, :3].astype(int) - (120, 230, 120)).sum(axis=2) < 90  # the sound-wave mark
    assert green[:, : h + 2].sum() > 10 and not green[:, h + 2 :].any()
    note = next(m for m in off_marks if m["id"] is None)
    assert note["text"].startswith("voice (off screen)") and all(m["id"] is None for m in off_marks)
    x, y, w, h = (round(v) for v in note["rect"])
    assert (x, y) == (4, 4) and off_screen[y : y + h, x : x + w, 3].mean() > 100  # in the top-left corner
