"""The assembly layer: the reader made for its running mode from a small config, the live runner given its
stages (the face reader and the body-cue reader) rather than building them, the output opened with its
fallback in one place, and sources and sinks in `with` blocks."""

from __future__ import annotations

import pytest
from conftest import FakeClassifier, ListSink, count_frames
from test_pipeline import ArraySource

from fercam.body.cues import BodyCues
from fercam.live import LiveRunner
from fercam.pipeline import FaceReader, Mode, ReaderConfig, run_offline
from fercam.settings import Settings, SettingsStore
from fercam.sinks import SinkError, open_sink, open_with_fallback
from fercam.sources import open_source
from fercam.types import Box, Detection

LEFT, RIGHT = (10, 10, 90, 90), (220, 130, 300, 210)  # two pictures' faces, far apart


class AlternatingDetector:
    """One face per picture, left then right: unrelated pictures."""

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image):
        self.calls += 1
        return [Detection(Box(*(LEFT if self.calls % 2 else RIGHT)), 0.99)]

    def detect_near(self, image, boxes):
        return self.detect(image)


def face_ids(mode: Mode) -> list[tuple[int, ...]]:
    seen = []
    reader = FaceReader(AlternatingDetector(), FakeClassifier(), mode=mode)
    run_offline(ArraySource(4), reader, [], Settings(), on_analysis=lambda a, f: seen.append(a))
    return [tuple(face.id for face in analysis.faces) for analysis in seen]


def test_an_image_mode_reader_reads_each_picture_afresh() -> None:
    assert face_ids(Mode.IMAGE) == [(1,), (1,), (1,), (1,)]  # nothing carries over: each face is the first
    offline = face_ids(Mode.OFFLINE)
    assert offline[0] == (1,) and max(max(ids) for ids in offline) > 1  # tracked: a new place is a new id


def test_the_reader_config_takes_only_what_the_reader_needs_from_the_settings() -> None:
    settings = Settings(detector="yunet", width=640, mirror=True)
    assert ReaderConfig.from_settings(settings) == ReaderConfig(detector="yunet")
    assert ReaderConfig.from_settings(Settings()) == ReaderConfig()


class CountingCueReader:
    """A `CueReader` fake: no cues for anyone, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def read(self, frame, faces):
        self.calls += 1
        return {face.id: BodyCues() for face in faces}


def test_the_live_runner_reads_cues_with_the_reader_it_is_given() -> None:
    made: list[CountingCueReader] = []
    configs: list[ReaderConfig] = []

    def make_cue_reader() -> CountingCueReader:
        made.append(CountingCueReader())
        return made[-1]

    def make_reader(config: ReaderConfig) -> FaceReader:
        configs.append(config)
        return FaceReader(AlternatingDetector(), FakeClassifier())

    store = SettingsStore(initial=Settings(body_cues=True, detector="yunet"))
    runner = LiveRunner(ArraySource(30, fps=30), ListSink(), store, make_reader, make_cue_reader=make_cue_reader)
    runner.run()
    assert configs == [ReaderConfig(detector="yunet")]  # made once, from the settings, on the inference thread
    (cue_reader,) = made  # built once, the first time the cues were on
    assert cue_reader.calls == runner.stats.analyses > 0
    cues = runner.body_cues.get()  # what the given reader said, for the last analysis's face
    assert len(cues) == 1 and all(isinstance(c, BodyCues) for c in cues.values())


def test_the_virtual_camera_alone_falls_back_and_only_where_a_fallback_is_given(tmp_path) -> None:
    told: list[SinkError] = []

    def preview(error: SinkError) -> ListSink:
        told.append(error)
        return ListSink()

    sink = open_with_fallback("virtualcam", preview, vcam_backend="no-such-backend")  # pyvirtualcam refuses it
    assert isinstance(sink, ListSink) and "no-such-backend" in str(told[0])
    with pytest.raises(SinkError, match="no-such-backend"):
        open_with_fallback("virtualcam", None, vcam_backend="no-such-backend")
    with pytest.raises(SinkError, match="folder does not exist"):  # a file that cannot be written never falls back
        open_with_fallback(f"file:{tmp_path / 'no' / 'out.mp4'}", preview)
    assert len(told) == 1


def test_sources_and_sinks_close_on_leaving_a_with_block_however_it_ends(media_dir, tmp_path) -> None:
    path = tmp_path / "out.mp4"
    with pytest.raises(KeyboardInterrupt):
        with open_source(str(media_dir / "fer_test.mp4")) as source, open_sink(f"file:{path}", fps=25) as sink:
            for _ in range(5):
                sink.send(source.read().image)
            raise KeyboardInterrupt  # a stop midway: the recording is still finished
    assert count_frames(path) == 5
    with open_source(str(media_dir / "two_people.jpg")) as photo:
        assert photo.read() is not None
