"""Who is speaking: the mouth meter on real faces, the voice's activity, the attribution on synthetic speech with
lips that follow it (or not), and whole 2x2 galleries of the shared GRID talking faces built by ffmpeg."""

from __future__ import annotations

import math
import subprocess

import cv2
import numpy as np
import pytest
from conftest import load_tool, requires_system_packages
from speaking_galleries import GRID, TURN_S, build_gallery

from fercam.speaking.attribution import GRID_HZ, SpeakerAttributor, Speaking
from fercam.speaking.voice_activity import VoiceActivity
from fercam.types import Box
from fercam.voice.audio import SILENCE_DB
from fercam.voice.speech import VAD_CHUNK_S

RATE = 16000


def voiced(clip: np.ndarray, *, lead_s: float = 1.0) -> VoiceActivity:
    """A VoiceActivity fed `lead_s` of quiet room, then `clip`, then another second of quiet room."""
    hiss = np.random.default_rng(3).normal(0, 30, round(lead_s * RATE)).astype(np.int16)
    voice = VoiceActivity(keep_s=30)
    voice.feed(np.concatenate([hiss, clip, hiss[:RATE]]), RATE)
    return voice


def lips_of(voice: VoiceActivity, times: np.ndarray) -> np.ndarray:
    """Lips that open with the voice's loudness (a mouth in step with it), as the mesh would measure them."""
    loud = (voice.loudness(times) - SILENCE_DB) / -SILENCE_DB  # 0 in silence, about 0.7 for loud speech
    return 0.2 + 0.15 * np.clip(loud, 0, 1)


def run(attributor: SpeakerAttributor, mouths: dict[int, np.ndarray], times: np.ndarray) -> list[Speaking]:
    return [attributor.update(t, {face: float(m[i]) for face, m in mouths.items()}) for i, t in enumerate(times)]


def mean_while_speaking(results: list[Speaking], face: int) -> float:
    return float(np.mean([r.faces[face] for r in results if r.voice > 0.5]))


# --- the voice's activity --------------------------------------------------------------------------------------


def test_voice_activity_reads_loudness_and_speech_by_time_and_keeps_a_bounded_history(spoken_clips):
    clip = spoken_clips[0]
    voice = VoiceActivity(start=5.0, keep_s=3.0)
    quiet = np.zeros(RATE, np.int16)  # a second of digital silence: the floor, not speech
    voice.feed(quiet, RATE)
    assert voice.end == pytest.approx(5.0 + 31 * VAD_CHUNK_S)  # whole 32 ms chunks only; the rest waits
    assert voice.loudness(np.array([5.5]))[0] == SILENCE_DB and voice.speech(np.array([5.5]))[0] == 0
    for start in range(0, len(clip), 1000):  # the sentence in odd pieces, as a microphone gives it
        voice.feed(clip[start : start + 1000], RATE)
    end = 5.0 + (RATE + len(clip)) / RATE
    assert voice.end == pytest.approx(end, abs=VAD_CHUNK_S)
    times = np.arange(end - 2.5, end, 0.04)
    assert voice.speech(times).mean() > 0.5 and voice.loudness(times).max() > -30
    assert voice.speech(np.array([5.5]))[0] == 0  # forgotten: more than keep_s before the end reads as no sound
    assert voice.loudness(np.array([end + 1.0]))[0] == SILENCE_DB  # not heard yet
    at_48k = VoiceActivity(start=5.0)
    at_48k.feed(np.repeat(clip, 3), 3 * RATE)  # any rate is resampled to 16 kHz
    assert at_48k.end == pytest.approx(5.0 + len(clip) / RATE, abs=VAD_CHUNK_S)


# --- the attribution on synthetic speech ----------------------------------------------------------------------


def test_lips_in_step_with_the_voice_speak_and_lips_out_of_step_or_still_do_not(spoken_clips):
    voice = voiced(spoken_clips[0])
    times = np.arange(0, voice.end, 1 / 30)  # a 30 fps camera: not the attribution's own 25 Hz grid
    in_step = lips_of(voice, times)
    late = lips_of(voice, times - 0.6)  # the same mouth, 0.6 s behind: far outside the lag search
    other = lips_of(voiced(spoken_clips[2]), times)  # someone else talking meanwhile
    still = 0.2 + np.random.default_rng(1).normal(0, 0.002, len(times))  # the mesh's jitter on a closed mouth
    results = run(SpeakerAttributor(voice), {1: in_step, 2: late, 3: other, 4: still}, times)
    assert mean_while_speaking(results, 1) > 0.7
    # a synthetic voice is so regular that a copy a few syllables late still half-matches (docs/speaking.md)
    assert mean_while_speaking(results, 2) < 0.5 * mean_while_speaking(results, 1)
    assert mean_while_speaking(results, 3) < 0.2 and mean_while_speaking(results, 4) < 0.05
    speakers = [r.speaker for r in results if r.voice > 0.5]
    assert speakers.count(1) > 0.7 * len(speakers) and speakers.count(2) < 0.1 * len(speakers)
    before = [r for r in results if r.t < 0.8]  # the quiet room before the sentence: nobody, not off screen
    assert all(r.voice == 0 and r.off_screen == 0 and max(r.faces.values()) == 0 for r in before)


def test_a_voice_no_face_matches_is_off_screen_and_two_voices_can_give_two_speakers(spoken_clips):
    a, b = spoken_clips[0], spoken_clips[3]
    voice = voiced(b)
    times = np.arange(0, voice.end, 1 / 25)
    chewing = 0.22 + 0.04 * np.sin(2 * np.pi * 1.6 * times)  # a mouth that moves all along, to no voice
    unrelated = {1: chewing, 2: 0.2 + 0 * times}
    results = [r for r in run(SpeakerAttributor(voice), unrelated, times) if r.voice > 0.5]
    assert np.mean([r.off_screen for r in results]) > 0.7
    assert sum(r.speaker is None for r in results) > 0.9 * len(results)

    size = min(len(a), len(b))
    level = [np.sqrt(np.mean(x[:size].astype(np.float64) ** 2)) for x in (a, b)]
    mixed = a[:size] / level[0] + b[:size] / level[1]  # two people talking at once, equally loud
    both = VoiceActivity(keep_s=30)
    both.feed(np.concatenate([np.zeros(RATE), mixed * 2000]).astype(np.int16), RATE)
    times = np.arange(0, both.end, 1 / 25)
    mouths = {1: lips_of(voiced(a), times), 2: lips_of(voiced(b), times)}  # each in step with its own voice
    results = run(SpeakerAttributor(both), mouths, times)
    assert mean_while_speaking(results, 1) > 0.3 and mean_while_speaking(results, 2) > 0.3


def test_a_face_is_judged_only_once_seen_long_enough_and_its_history_stays_bounded(spoken_clips):
    voice = voiced(np.tile(spoken_clips[1], 6), lead_s=0.5)
    times = np.arange(0, voice.end, 1 / 25)
    lips = lips_of(voice, times)
    attributor = SpeakerAttributor(voice)
    arrives = float(times[len(times) // 2])
    judged = []
    for t, opening in zip(times, lips):
        mouths = {1: opening} if t < arrives else {1: opening, 2: opening}  # face 2 comes in halfway
        result = attributor.update(t, mouths)
        if arrives <= t < arrives + 0.4:  # seen for under 0.5 s: not judged yet
            assert math.isnan(result.match[2]) and result.faces[2] == 0
        elif arrives <= t < arrives + 0.7:  # then judged on its history so far, not only once the window is full
            judged.append(not math.isnan(result.match[2]))
    assert any(judged)
    assert max(len(history) for history in attributor._mouths.values()) <= 2.5 * GRID_HZ
    assert attributor.update(times[-1] + 5, {}).faces == {} and attributor._mouths == {}  # gone faces forgotten


def test_live_the_sound_arriving_late_in_small_pieces_gives_the_same_speaker(spoken_clips):
    """A microphone delivers 0.1 s pieces about 0.2 s after the camera's frame of the same moment: the attribution
    judges up to where both are known, with only the newest seconds kept."""
    clip = spoken_clips[3]
    offline = voiced(clip)
    times = np.arange(0, offline.end, 1 / 25)
    mouths = {1: lips_of(offline, times), 2: lips_of(voiced(spoken_clips[1]), times)}
    hiss = np.random.default_rng(3).normal(0, 30, RATE).astype(np.int16)
    stream = np.concatenate([hiss, clip, hiss])
    live = SpeakerAttributor(VoiceActivity(keep_s=3.0))
    fed, results = 0, []
    for i, t in enumerate(times):
        while fed < len(stream) and (fed + 1600) / RATE <= t - 0.2:  # the sound 0.2 s behind the picture
            live.voice.feed(stream[fed : fed + 1600], RATE)
            fed += 1600
        results.append(live.update(t, {face: float(m[i]) for face, m in mouths.items()}))
    assert len(live.voice._db) <= round(3.0 / VAD_CHUNK_S)
    speakers = [r.speaker for r in results if r.voice > 0.5]
    assert speakers.count(1) > 0.6 * len(speakers) and 2 not in speakers


def test_a_mouth_the_mesh_cannot_place_is_not_judged(spoken_clips):
    voice = voiced(spoken_clips[0])
    times = np.arange(0, voice.end, 1 / 25)
    lost = lips_of(voice, times)
    lost[len(times) // 3 :] = np.nan  # the face turned away for the rest
    results = run(SpeakerAttributor(voice), {1: lost}, times)
    assert all(r.faces[1] == 0 for r in results[len(times) // 3 + round(GRID_HZ) :])


# --- the mouth meter and the galleries (shared GRID clips) ----------------------------------------------------


def grid_or_skip() -> None:
    if not GRID.is_dir():
        pytest.skip(f"the GRID clips are not at {GRID} (../shared/media/grid; FERCAM_SHARED names another place)")
    requires_system_packages("ffmpeg")


@pytest.fixture(scope="module")
def reader():
    grid_or_skip()
    from fercam.speaking.clip import SpeakingReader

    return SpeakingReader(near_every=5)  # the tiles do not move: a search near them every 5th frame is enough


def test_the_mouth_meter_opens_with_speech_and_gives_nan_where_no_face_is(reader):
    from fercam.media import VideoReader

    video = VideoReader(GRID / "lbax4n.mpg")
    frames = [image for image, _ in video.frames()]
    video.close()
    box = reader.detector.detect(frames[0])[0].box
    openings = np.array([reader.meter.measure(image, {7: box})[7] for image in frames])
    quiet, talking = openings[60:], openings[15:50]  # GRID: the sentence between about 0.5 s and 2.2 s
    assert np.nanstd(talking) > 3 * np.nanstd(quiet) and np.all(np.isfinite(openings))
    assert talking.max() - talking.min() > 0.08  # the jaw drops by a tenth of the eye distance or more
    blank = np.zeros_like(frames[0])
    assert math.isnan(reader.meter.measure(blank, {1: box})[1])
    assert reader.meter.measure(cv2.flip(frames[20], 1), {}) == {}
    off_picture = reader.meter.measure(frames[20], {2: Box(2000, 2000, 2100, 2100)})[2]
    assert math.isnan(off_picture)


def turn_means(frames, turns: int) -> np.ndarray:
    """(turns, 4): each tile's mean `speaking` over each 3-s turn (tiles by where their face is)."""
    sums, counts = np.zeros((turns, 4)), np.zeros((turns, 1))
    for frame in frames:
        k = min(int(frame.t // TURN_S), turns - 1)
        counts[k] += 1
        for face_id, p in frame.speaking.faces.items():
            (cx, cy) = frame.boxes[face_id].center
            sums[k, int(cx >= 360) + 2 * int(cy >= 288)] += p
    return sums / np.maximum(counts, 1)


def turn_right(means: np.ndarray, speaker: int | None) -> bool:
    """The issue's rule: the speaker's mean >= 0.3 and at least twice any other's; nobody over 0.2 when no
    visible face speaks (a silent turn or a voice from off screen)."""
    if speaker is None:
        return bool(means.max() <= 0.2)
    return bool(means[speaker] >= 0.3 and means[speaker] >= 2 * np.delete(means, speaker).max())


TILES = ["lbbc2a", "pwij3p", "sbia1a", "bbaf2n"]  # four people; brbk7n is heard but never shown


@pytest.mark.parametrize("alive", [False, True], ids=["frozen", "listening"])
def test_with_the_other_faces_still_every_turn_goes_to_the_right_face(reader, tmp_path, alive):
    """The others frozen, or listening (their own faces after their sentence, back and forth: blinks, small
    shifts, a mouth that stays shut), as a call's gallery is never frozen."""
    sounds = [TILES[2], TILES[0], None, "brbk7n", TILES[3]]  # a silent turn, then a voice from off screen
    gallery = build_gallery(tmp_path / "still.mp4", TILES, sounds, alive=alive)
    frames = list(reader.read(gallery))
    assert len(frames) == 375 and {len(f.boxes) for f in frames} == {4}
    means = turn_means(frames, len(sounds))
    for k, sound in enumerate(sounds):
        speaker = TILES.index(sound) if sound in TILES else None
        assert turn_right(means[k], speaker), (k, sound, means[k].round(2))


@pytest.fixture(scope="module")
def moving_means(reader, tmp_path_factory) -> tuple[np.ndarray, list[str]]:
    """Every tile talks all along, a quarter of a clip apart; the first turn's voice is the tile that starts
    its sentence with the gallery (no turn begins before the attribution has any history)."""
    sounds = [TILES[0], "brbk7n", TILES[3], TILES[1], TILES[2]]
    path = tmp_path_factory.mktemp("gallery") / "moving.mp4"
    gallery = build_gallery(path, TILES, sounds, phases=[0.0, 0.75, 1.5, 2.25])
    return turn_means(list(reader.read(gallery)), len(sounds)), sounds


def test_with_every_mouth_moving_the_voice_goes_to_its_own_face_more_than_to_any_other(moving_means):
    means, sounds = moving_means
    shown = [(k, TILES.index(s)) for k, s in enumerate(sounds) if s in TILES]
    assert sum(int(means[k].argmax()) == tile for k, tile in shown) >= 3, means.round(2)


@pytest.mark.xfail(
    strict=True,
    reason="issue #42's bar, not met yet: GRID's sentences share one rhythm, so an "
    "out-of-step talker still half-matches (docs/speaking.md, measured)",
)
def test_with_every_mouth_moving_four_turns_of_five_are_right(moving_means):
    means, sounds = moving_means
    right = [turn_right(means[k], TILES.index(s) if s in TILES else None) for k, s in enumerate(sounds)]
    assert sum(right) >= 4, means.round(2)


def test_a_recording_without_sound_is_refused_with_the_reason(reader, tmp_path):
    from fercam.voice.audio import AudioError

    silent = tmp_path / "silent.mp4"
    command = ["ffmpeg", "-v", "error", "-i", str(GRID / "lbax4n.mpg"), "-an", "-c:v", "libx264", str(silent)]
    subprocess.run(command, check=True, timeout=60)
    with pytest.raises(AudioError, match="has no audio track"):
        next(reader.read(silent))


def test_the_voice_to_mouth_filter_tool_learns_which_band_and_lag_the_mouth_follows(spoken_clips):
    """`tools/voice_mouth_filter.py` (tried, not adopted; docs/speaking.md): fitted on a mouth that follows one
    band of a real voice two grid steps late, the filter puts its weight there and predicts that mouth, and the
    voice it hears through (`FilteredVoice`) gives the same prediction on the attribution's grid, in pieces."""
    tool = load_tool("voice_mouth_filter")
    voice = tool.FilteredVoice(keep_s=30)
    sound = np.concatenate(spoken_clips[:3])
    for piece in np.array_split(sound, 37):  # a stream's blocks, not one whole clip
        voice.feed(piece, RATE)
    times = np.arange(0.1, voice.end - 0.1, 1 / GRID_HZ)
    inputs = tool.lagged(voice.bands(times))
    band, late = 5, 2
    followed = inputs[:, (tool.LAGS - late) * tool.BANDS + band]  # the band as it was `late` steps before
    mouth = 0.01 * followed + np.random.default_rng(0).normal(0, 0.01, len(times))
    learnt = tool.VoiceFilter(inputs, mouth)
    strongest = int(np.argmax(np.abs(learnt.weights)))
    assert strongest == (tool.LAGS - late) * tool.BANDS + band
    assert np.corrcoef(learnt.predict(inputs), followed)[0, 1] > 0.9
    tool.FilteredVoice.voice_filter = learnt
    try:
        assert np.allclose(voice.loudness(times), learnt.predict(inputs))
    finally:
        tool.FilteredVoice.voice_filter = None
