"""Voice emotion: decoding, speech detection, the shipped LiteRT model and its timeline/CSV output."""

from __future__ import annotations

import csv
import sys
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from fercam.audio import AudioError, MicrophoneError, is_speech, load_audio, sliding_windows
from fercam.emotion import ModelError
from fercam.types import EMOTIONS
from fercam.voice import (
    MicrophoneListener,
    VoiceClassifier,
    load_voice_classifier,
    log_mel,
    voice_timeline,
    write_voice_csv,
)

av = pytest.importorskip("av")
SPEECH_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech"


def _corpus(name: str) -> np.lib.npyio.NpzFile:
    path = SPEECH_DIR / f"{name}.npz"
    if not path.is_file():
        pytest.skip(f"shared speech data missing: {path} (see ../shared/data/speech/README.md)")
    return np.load(path)


@pytest.fixture(scope="module")
def emodb_clips() -> list[np.ndarray]:
    """A few labelled EmoDB clips (int16, 16 kHz), first of each class present."""
    npz = _corpus("emodb")
    audio, offsets, labels = npz["audio"], npz["offsets"], npz["labels"]
    firsts = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels[labels >= 0])]
    return [audio[offsets[i] : offsets[i + 1]] for i in firsts]


@pytest.fixture(scope="module")
def classifier() -> VoiceClassifier:
    return load_voice_classifier()


def _encode(path: Path, samples: np.ndarray, codec: str, *, rate: int = 16000, video: bool = False) -> Path:
    """Write int16 mono `samples` (16 kHz) with PyAV, optionally next to a short grey video track."""
    with av.open(str(path), "w") as out:  # every stream must exist before the first packet is muxed
        sound = out.add_stream(codec, rate=rate, layout="mono")
        frames = out.add_stream("mpeg4", rate=10) if video else None
        if frames is not None:
            frames.width, frames.height, frames.pix_fmt = 64, 48, "yuv420p"
            for i in range(int(10 * len(samples) / 16000)):
                image = np.full((48, 64, 3), i % 256, np.uint8)
                out.mux(frames.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
            out.mux(frames.encode(None))
        frame = av.AudioFrame.from_ndarray(samples[None], format="s16", layout="mono")
        frame.sample_rate = 16000
        out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return path


def _check_probs(probs: np.ndarray, n: int) -> None:
    assert probs.shape == (n, len(EMOTIONS))
    assert np.all(np.isfinite(probs)) and np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)


def test_predict_clips_contract(classifier, emodb_clips):
    from fercam.audio import resample

    clip = emodb_clips[0]
    as_float = clip.astype(np.float32) / 32768.0
    probs = classifier.predict_clips([clip, as_float, clip[:4000]], 16000)
    _check_probs(probs, 3)
    np.testing.assert_allclose(probs[0], probs[1], atol=1e-5)  # int16 and float agree
    for rate in (44100, 8000):
        _check_probs(classifier.predict_clips([resample(clip, 16000, rate)], rate), 1)
    _check_probs(classifier.predict_clips([], 16000), 0)


def test_44k_input_matches_16k(classifier, emodb_clips):
    from fercam.audio import resample

    clip = emodb_clips[1]
    direct = classifier.predict_clips([clip], 16000)[0]
    via_44k = classifier.predict_clips([resample(clip, 16000, 44100)], 44100)[0]
    assert np.abs(direct - via_44k).max() < 0.1


def test_features_ignore_gain():
    rng = np.random.default_rng(0)
    window = (rng.standard_normal(32000) * 0.05).astype(np.float32)
    np.testing.assert_allclose(log_mel(window[None]), log_mel(window[None] * 0.01), atol=1e-3)


def test_sliding_windows_cover_the_recording():
    windows = sliding_windows(np.zeros(5 * 16000), 16000, 2.0, 0.5)
    assert [w[0] for w in windows] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    assert windows[-1][1] == 5.0 and all(len(w[2]) == 32000 for w in windows)
    assert [(a, b) for a, b, _ in sliding_windows(np.zeros(8000), 16000)] == [(0.0, 0.5)]


def test_silence_is_not_speech(classifier):
    rng = np.random.default_rng(1)
    quiet_room = (rng.standard_normal(4 * 16000) * 10 ** (-70 / 20)).astype(np.float32)
    for samples in (np.zeros(4 * 16000, np.float32), quiet_room):
        timeline = voice_timeline(samples, 16000, classifier)
        assert timeline and all(not w.speech and w.probs is None and w.emotion is None for w in timeline)
        assert timeline[-1].end == pytest.approx(4.0)


def test_speech_timeline_and_csv(classifier, emodb_clips, tmp_path):
    samples = np.concatenate([np.zeros(40000, np.int16), emodb_clips[2], np.zeros(16000, np.int16)])
    assert is_speech(emodb_clips[2], 16000)
    timeline = voice_timeline(samples, 16000, classifier)
    assert not timeline[0].speech and any(w.speech for w in timeline)
    _check_probs(np.stack([w.probs for w in timeline if w.speech]), sum(w.speech for w in timeline))
    path = write_voice_csv(timeline, tmp_path / "voice.csv")
    rows = list(csv.DictReader(path.open()))
    assert list(rows[0]) == ["start_s", "end_s", "speech", "emotion", "confidence", *EMOTIONS]
    assert len(rows) == len(timeline) and rows[0]["speech"] == "0" and rows[0]["emotion"] == ""
    spoken = next(r for r in rows if r["speech"] == "1")
    assert spoken["emotion"] in EMOTIONS and float(spoken["confidence"]) > 0


def test_wav_from_emodb_decodes_back(emodb_clips, tmp_path):
    clip = emodb_clips[0]
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
        out.writeframes(clip.tobytes())
    np.testing.assert_allclose(load_audio(path), clip / 32768.0, atol=1e-6)
    assert abs(len(load_audio(path, sample_rate=8000)) - len(clip) / 2) <= 2


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"), [("flac", "flac", 16000), ("mp3", "libmp3lame", 16000), ("ogg", "libopus", 48000)]
)
def test_compressed_formats_decode(emodb_clips, tmp_path, suffix, codec, rate):
    clip = emodb_clips[0]
    decoded = load_audio(_encode(tmp_path / f"clip.{suffix}", clip, codec, rate=rate))
    assert decoded.dtype == np.float32 and abs(len(decoded) - len(clip)) < 0.1 * 16000
    assert np.abs(decoded).max() <= 1.0 and is_speech(decoded, 16000)


def test_video_sound_track_gives_a_timeline(classifier, emodb_clips, tmp_path):
    clip = np.concatenate(emodb_clips[:2])
    path = _encode(tmp_path / "talk.mp4", clip, "aac", video=True)
    samples = load_audio(path)
    assert abs(len(samples) - len(clip)) < 0.2 * 16000
    timeline = voice_timeline(samples, 16000, classifier)
    assert timeline[-1].end == pytest.approx(len(samples) / 16000, abs=0.01)
    assert sum(w.speech for w in timeline) >= len(timeline) // 2


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    import cv2

    files = {"empty": tmp_path / "empty.wav", "corrupt": tmp_path / "corrupt.wav", "text": tmp_path / "notes.mp3"}
    files["empty"].write_bytes(b"")
    files["corrupt"].write_bytes(b"RIFF" + np.random.default_rng(2).bytes(4000))
    files["text"].write_text("these are meeting notes, not sound\n" * 20)
    files["silent video"] = tmp_path / "silent.mp4"
    writer = cv2.VideoWriter(str(files["silent video"]), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 48))
    for i in range(10):
        writer.write(np.full((48, 64, 3), 20 * i, np.uint8))
    writer.release()
    with wave.open(str(tmp_path / "no_samples.wav"), "wb") as out:
        out.setnchannels(1), out.setsampwidth(2), out.setframerate(16000)
    files["no samples"] = tmp_path / "no_samples.wav"
    files["missing"] = tmp_path / "missing.wav"
    return files


def test_bad_audio_raises_clear_audio_error(tmp_path):
    expected = {
        "empty": "empty",
        "corrupt": "not a readable",
        "text": "not a readable",
        "silent video": "no audio track",
        "no samples": "empty",
        "missing": "no such file",
    }
    for kind, path in _bad_files(tmp_path).items():
        with pytest.raises(AudioError, match=expected[kind]) as info:
            load_audio(path)
        assert path.name in str(info.value) and "\n" not in str(info.value), kind


def test_missing_or_wrong_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_voice_classifier(tmp_path / "nothing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer" * 64)
    with pytest.raises(ModelError, match="not a LiteRT model"):
        load_voice_classifier(junk)


def test_window_inference_is_fast(classifier, emodb_clips):
    """Features + model for one 2 s window within 5 ms (best of 20, so a busy CPU does not fail it)."""
    window = emodb_clips[0][:32000]
    timings = []
    for _ in range(20):
        started = time.perf_counter()
        classifier.predict_windows([window])
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.005


def test_microphone_listener_without_a_microphone(classifier, emodb_clips, monkeypatch):
    listener = MicrophoneListener(classifier)
    assert listener.latest() is None and listener.update() is None  # nothing heard yet
    listener.push(emodb_clips[3])
    _check_probs(listener.update()[None], 1)
    _check_probs(listener.latest()[None], 1)
    listener.push(np.zeros(32000, np.float32))
    assert listener.update() is None
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(MicrophoneError, match="pip install sounddevice"):
        MicrophoneListener(classifier).start()


class _FakeStream:
    """Stands in for `sounddevice.InputStream`: delivers a 44.1 kHz recording in 10 ms blocks on start."""

    def __init__(self, samples: np.ndarray, callback) -> None:
        self.samples, self.callback, self.closed = samples, callback, False

    def start(self) -> None:
        for i in range(0, len(self.samples), 441):
            block = self.samples[i : i + 441, None]
            self.callback(block, len(block), None, None)

    def stop(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


def test_microphone_listener_with_a_native_44k_device(classifier, emodb_clips, monkeypatch):
    from types import SimpleNamespace

    from fercam.audio import resample

    recording = resample(emodb_clips[4], 16000, 44100)
    streams: list[_FakeStream] = []
    fake = SimpleNamespace(
        PortAudioError=RuntimeError,
        query_devices=lambda device, kind: {"default_samplerate": 44100.0},
        InputStream=lambda **kw: streams.append(_FakeStream(recording, kw["callback"])) or streams[-1],
    )
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    with MicrophoneListener(classifier, hop_s=60) as listener:
        _check_probs(listener.update()[None], 1)
    assert streams[0].closed and listener.latest() is None  # stop() drops what it heard


def test_shipped_model_beats_chance_on_training_corpora(classifier):
    """A sanity floor only: the shipped model saw every speaker, so this is not a held-out score.

    Speaker-independent numbers are in models/VOICE_MODEL.md (leave-speakers-out cross-validation).
    """
    floors = {"emodb": 0.6, "savee": 0.5}
    for name, floor in floors.items():
        npz = _corpus(name)
        audio, offsets, labels = npz["audio"], npz["offsets"], npz["labels"]
        keep = np.flatnonzero(labels >= 0)[::3]  # every 3rd clip keeps the test quick
        probs = classifier.predict_clips([audio[offsets[i] : offsets[i + 1]] for i in keep], 16000)
        accuracy = float(np.mean(probs.argmax(axis=1) == labels[keep]))
        assert accuracy > floor, f"{name}: {accuracy:.2f} on clips the model was trained on"


def test_training_folds_are_speaker_disjoint_and_augmentation_keeps_shape():
    from fercam.training.voice_train import augment_window, load_speech, speaker_folds

    for name in ("emodb", "savee"):
        _corpus(name)
    data = load_speech(SPEECH_DIR)
    assert -1 not in data.labels and set(data.corpus) == {"emodb", "savee"}
    for folds in (5, 10):
        fold = speaker_folds(data, folds)
        for corpus, speaker in set(zip(data.corpus, data.speakers, strict=True)):
            assert len(set(fold[(data.corpus == corpus) & (data.speakers == speaker)])) == 1
    rng = np.random.default_rng(3)
    for clip in (data.clips[0], data.clips[0][:8000]):
        window = augment_window(clip, rng)
        assert window.shape == (32000,) and window.dtype == np.float32 and np.abs(window).max() <= 1.0
