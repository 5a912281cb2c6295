"""Every stage, real or fake, satisfies its declared contract (fercam/contracts.py)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import FakeClassifier, FakeDetector, ListSink

from fercam.combined import load_combined_reading
from fercam.contracts import Detector, EmotionClassifier, FaceClassifier, Sink, Source, VoiceClassifier
from fercam.detection import DETECTORS, load_detector
from fercam.detection.fallback import FallbackDetector
from fercam.emotion import load_classifier
from fercam.sinks import VideoFileSink, open_sink
from fercam.sources import SOURCES, open_source
from fercam.voice.classifier import load_voice_classifier


@pytest.mark.parametrize("name", DETECTORS.available())
def test_every_available_detector_is_a_detector_and_searches_near_boxes(name):
    detector = load_detector(name)
    assert isinstance(detector, Detector)
    image = np.full((120, 160, 3), 128, np.uint8)
    assert detector.detect(image) == [] and detector.detect_near(image, []) == []


def test_the_classifiers_satisfy_their_contracts():
    assert isinstance(load_classifier(), EmotionClassifier)
    assert isinstance(load_combined_reading(), FaceClassifier)
    assert isinstance(FallbackDetector(load_detector("mtcnn"), load_detector("yunet")), Detector)
    voice = load_voice_classifier()
    assert isinstance(voice, VoiceClassifier)
    assert voice.predict_windows([np.zeros(32000, np.float32)]).shape == (1, 7)


def test_sources_of_every_file_kind_satisfy_the_source_contract(media_dir):
    for spec in (media_dir / "fer_test.mp4", media_dir / "fer_justin.jpg", media_dir):
        source = open_source(str(spec))
        assert isinstance(source, Source) and not source.reconnects and source.frame_count
        assert source.read() is not None and source.reopen() is False
        source.close()
    still = open_source(str(media_dir / "fer_justin.jpg"), realtime=True)  # a photo as a camera
    assert isinstance(still, Source) and still.live and still.frame_count is None and still.read() is not None
    still.close()
    assert SOURCES.kind_of("0").live and SOURCES.kind_of("rtsp://127.0.0.1/x").live


def test_sinks_satisfy_the_sink_contract(tmp_path):
    assert isinstance(VideoFileSink(tmp_path / "a.mp4"), Sink)
    sink = open_sink(f"file:{tmp_path / 'b.mp4'}")
    assert isinstance(sink, Sink) and sink.closed is False


def test_the_test_fakes_satisfy_the_same_contracts():
    assert isinstance(FakeDetector([]), Detector)
    assert isinstance(FakeClassifier(), EmotionClassifier)
    assert isinstance(ListSink(), Sink)
    assert not isinstance(object(), Detector)  # the check is real: a bare object is no stage
