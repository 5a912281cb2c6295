"""Stages of the pipeline, headless: crops, tracking, overlays, offline and live modes."""

from __future__ import annotations

import os
import signal
import threading
import time

import numpy as np
import pytest
from conftest import FakeClassifier, FakeDetector, ListSink

from fercam.annotate import annotate
from fercam.emoji import render_emoji
from fercam.live import LatestSlot, LiveRunner
from fercam.pipeline import FaceReader, face_crops, render, run_offline
from fercam.settings import Settings, SettingsStore
from fercam.tracking import FaceTracker
from fercam.types import Analysis, Box, Detection, Emotion, Face, Frame

BOX = (100, 80, 200, 180)


class ArraySource:
    """Synthetic frames from memory; `live` sources pace themselves like a camera."""

    name = "array"
    reconnects = False
    frame_count = None

    def __init__(self, count: int = 10, *, fps: float = 0.0, size=(320, 240)):
        self.count, self.fps, self.size = count, fps or 30.0, size
        self.live = bool(fps)
        self._pace = 1 / fps if fps else 0.0
        self._index = 0
        self._start = time.monotonic()

    def read(self):
        if self._index >= self.count:
            return None
        if self._pace:
            time.sleep(max(0.0, self._start + self._index * self._pace - time.monotonic()))
        image = np.full((self.size[1], self.size[0], 3), 90 + self._index % 50, np.uint8)
        self._index += 1
        return Frame(image, self._index - 1, (self._index - 1) / self.fps)

    def reopen(self):
        return False

    def close(self):
        pass


def face(probs=(0, 0, 0, 1, 0, 0, 0), box=BOX, face_id=1) -> Face:
    return Face(face_id, Box(*box), 0.99, np.asarray(probs, np.float32))


def test_face_crops_are_square_and_padded_at_the_border():
    gray = np.arange(100 * 100, dtype=np.uint32).reshape(100, 100).astype(np.uint8)
    inside, corner = face_crops(gray, [Box(20, 20, 60, 50), Box(-10, -10, 30, 30)])
    assert inside.shape[0] == inside.shape[1] == 44
    assert corner.shape == (44, 44)
    assert corner[0, 0] == gray[0, 0]  # replicated edge, not black


def test_tracker_keeps_ids_and_smooths_flicker():
    tracker = FaceTracker(smoothing_s=0.3)
    happy, sad = np.eye(7, dtype=np.float32)[3], np.eye(7, dtype=np.float32)[4]
    a, b = Detection(Box(0, 0, 50, 50), 1.0), Detection(Box(200, 0, 250, 50), 1.0)
    first = tracker.update([a, b], np.stack([happy, happy]), 0.0)
    moved = Detection(Box(5, 2, 55, 52), 1.0)
    second = tracker.update([b, moved], np.stack([happy, sad]), 1 / 30)
    assert [f.id for f in first] == [1, 2]
    assert [f.id for f in second] == [2, 1]
    assert second[1].emotion == "happy"  # one sad frame does not flip the label
    for t in (1.0, 1.5):  # analysed frames without it
        tracker.update([], np.empty((0, 7), np.float32), t)
    later = tracker.update([moved], sad[None], 2.0)
    assert later[0].id == 3  # gone longer than max_age, and missed in analysed frames: a new identity


def test_annotators_draw_inside_boxes_and_leave_the_rest():
    image = np.full((300, 400, 3), 127, np.uint8)
    analysis = Analysis(0, 0.0, (face(),))
    settings = Settings(show_probs=False, show_emoji=False, show_labels=False)
    out = annotate(image, analysis, settings)
    changed = np.any(out != image, axis=2)
    x1, y1, x2, y2 = BOX
    assert changed[y1 - 2 : y2 + 3, x1 - 2 : x2 + 3].any()
    outside = changed.copy()
    outside[y1 - 3 : y2 + 4, x1 - 3 : x2 + 4] = False
    assert not outside.any()
    assert np.array_equal(image, np.full((300, 400, 3), 127, np.uint8))  # input untouched


def test_each_overlay_can_be_switched_and_paused():
    image = np.full((400, 500, 3), 127, np.uint8)
    analysis = Analysis(0, 0.0, (face(),))
    none = Settings(show_boxes=False, show_labels=False, show_emoji=False, show_probs=False)
    assert np.array_equal(annotate(image, analysis, none), image)
    assert np.array_equal(annotate(image, analysis, Settings(paused=True)), image)
    for key in ("show_boxes", "show_labels", "show_emoji", "show_probs"):
        assert not np.array_equal(annotate(image, analysis, none.replace(**{key: True})), image), key


def test_emoji_are_crisp_at_any_size_and_differ_by_emotion():
    for size in (16, 64, 400):
        emoji = render_emoji(Emotion.HAPPY, size)
        assert emoji.shape == (size, size, 4)
        assert emoji[size // 2, size // 2, 3] == 255 and emoji[0, 0, 3] == 0
    big = render_emoji(Emotion.HAPPY, 400)[..., 3]
    edge = np.count_nonzero((big > 0) & (big < 255))
    assert edge < 0.02 * big.size  # a sharp anti-aliased rim, not a blurry upscale
    assert not np.array_equal(render_emoji(Emotion.HAPPY, 64), render_emoji(Emotion.SAD, 64))


def test_offline_mode_analyses_every_frame_in_order():
    sink, seen = ListSink(), []
    reader = FaceReader(FakeDetector([BOX]), FakeClassifier())
    count = run_offline(
        ArraySource(12), reader, [sink], Settings(), on_analysis=lambda a, f: seen.append(a.frame_index)
    )
    assert count == 12 and len(sink.frames) == 12
    assert seen == list(range(12))


def test_offline_mode_writes_on_its_own_thread_and_a_sink_error_stops_the_run_with_what_was_written():
    """The sinks and `on_analysis` run a few frames behind the reader, on another thread: a failing sink (a full
    disk) is raised to the caller, the frames before it are written whole, and the reader stops soon after."""
    from fercam.recording import SinkError

    class FullAfter(ListSink):
        def send(self, image):
            if len(self.frames) == 5:
                raise SinkError("disk full")
            self.threads.add(threading.current_thread().name)
            super().send(image)

    sink, seen, source = FullAfter(), [], ArraySource(500)
    sink.threads = set()
    reader = FaceReader(FakeDetector([BOX]), FakeClassifier())
    with pytest.raises(SinkError, match="disk full"):
        run_offline(source, reader, [sink], Settings(), on_analysis=lambda a, f: seen.append(a.frame_index))
    assert len(sink.frames) == 5 and seen == list(range(5))  # each frame whole: its video and its row
    assert sink.threads == {"fercam-in-order"} and threading.current_thread().name not in sink.threads
    assert source._index < 20  # the reader stopped within a few frames of the error


def test_a_ctrl_c_while_the_last_frames_are_written_comes_after_they_are():
    """The second Ctrl-C stops at once, but not in the middle of the frames already handed to the writer: the caller
    closes the files next, and a frame cut off there would leave a video without its end."""
    release = threading.Event()

    class Slow(ListSink):
        def send(self, image):
            release.wait(5)
            super().send(image)

    def interrupt() -> None:  # while the caller waits for the writer (the sends are held until after the signal)
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        release.set()

    sink, seen = Slow(), []
    reader = FaceReader(FakeDetector([BOX]), FakeClassifier())
    # Ctrl-C as Python has it: a command run in this process before may have left its own handler installed
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        threading.Thread(target=interrupt, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            run_offline(ArraySource(3), reader, [sink], Settings(), on_analysis=lambda a, f: seen.append(a.frame_index))
    finally:
        signal.signal(signal.SIGINT, previous)
    assert len(sink.frames) == 3 and seen == [0, 1, 2]


def test_offline_mode_decodes_ahead_on_its_own_thread_and_a_read_error_comes_at_its_frame():
    """Frames are read a few ahead, on another thread; a source that fails (a cut stream) fails the run at that
    frame, after the frames before it were analysed and written."""

    class FailsAtFive(ArraySource):
        def read(self):
            self.threads.add(threading.current_thread().name)
            if self._index == 5:
                raise OSError("stream cut")
            return super().read()

    sink, seen, source = ListSink(), [], FailsAtFive(50)
    source.threads = set()
    reader = FaceReader(FakeDetector([BOX]), FakeClassifier())
    with pytest.raises(OSError, match="stream cut"):
        run_offline(source, reader, [sink], Settings(), on_analysis=lambda a, f: seen.append(a.frame_index))
    assert len(sink.frames) == 5 and seen == list(range(5))
    assert source.threads == {"fercam-read-ahead"}


def test_offline_mode_reads_each_face_in_one_view_a_frame_the_mirror_on_the_next(media_dir):
    import cv2

    from fercam.pipeline import Mode, ReaderConfig, make_face_reader

    reader = make_face_reader(ReaderConfig(), Mode.OFFLINE)
    model = reader.classifier.classifier._model
    inputs, run = [], model.run
    model.run = lambda batch: inputs.append(batch.copy()) or run(batch)
    image = cv2.imread(str(media_dir / "fr_obama.jpg"))
    for index in range(2):
        reader.read(Frame(image, index, index / 30))
    assert [len(batch) for batch in inputs] == [1, 1]  # both views in one frame would be a batch of 2
    first, second = inputs
    assert np.abs(second - first[:, :, ::-1]).mean() < np.abs(second - first).mean() / 2  # the mirror image


def test_live_mode_loads_the_models_while_the_camera_opens():
    loaded = threading.Event()

    class SlowCamera(ArraySource):
        def read(self):
            if self._index == 0:
                self.loaded_first = loaded.wait(timeout=5)  # the camera's first frame takes as long as it takes
            return super().read()

    def make_reader(config):
        loaded.set()
        return FaceReader(FakeDetector([BOX]), FakeClassifier())

    camera = SlowCamera(3, fps=30)
    LiveRunner(camera, ListSink(), SettingsStore(initial=Settings()), make_reader).run()
    assert camera.loaded_first  # not only once a frame has come


def test_live_mode_keeps_full_rate_with_a_slow_classifier():
    sink = ListSink()
    slow = FakeClassifier(delay=0.25)
    runner = LiveRunner(
        ArraySource(45, fps=30),
        sink,
        SettingsStore(initial=Settings()),
        lambda s: FaceReader(FakeDetector([BOX]), slow),
    )
    runner.run()
    gaps = np.diff(sink.times)
    assert abs(len(sink.frames) - 45) <= 2  # the camera's rate: on a starved CPU one frame may drop or be held
    assert np.median(gaps) < 1 / 30 * 1.5  # paced by the camera, not by the 4 Hz model
    assert 1 <= slow.calls <= 8  # only the newest frames were analysed
    assert runner.stats.first_annotated_at is not None


def test_live_mode_survives_a_failing_model_and_marks_nothing_fresh():
    sink = ListSink()
    broken = FakeClassifier(error=RuntimeError("model exploded"))
    told: list[str] = []
    runner = LiveRunner(
        ArraySource(20, fps=30),
        sink,
        SettingsStore(initial=Settings()),
        lambda s: FaceReader(FakeDetector([BOX]), broken),
        on_error=told.append,
    )
    runner.run()
    assert told == ["analysis failed, video continues without fresh overlays: RuntimeError: model exploded"]
    assert abs(len(sink.frames) - 20) <= 2  # the camera's rate: on a starved CPU one frame may drop or be held
    assert "model exploded" in runner.stats.error
    assert runner.stats.first_annotated_at is None


def test_stale_analysis_is_drawn_grey():
    image = np.full((300, 400, 3), 127, np.uint8)
    out = annotate(image, Analysis(0, 0.0, (face(),)), Settings(show_labels=False), stale=True)
    x1, y1, _, _ = BOX
    assert tuple(out[y1, x1 + 20]) == (128, 128, 128)


def test_latest_slot_drops_old_values():
    slot = LatestSlot()
    for i in range(5):
        slot.put(i)
    version, value = slot.wait_newer(0, timeout=0.01)
    assert (version, value) == (5, 4)
    assert slot.wait_newer(5, timeout=0.01) == (5, 4)  # nothing newer: returns after the timeout


class UnpluggedCamera(ArraySource):
    """A camera that disappears after 5 frames and returns after 3 reconnect attempts.

    While it is away, `read` gives None, or raises (`raises`); `reopen` may hang (`hang_s`).
    """

    reconnects = True

    def __init__(self, *, raises: bool = False, hang_s: float = 0.0):
        super().__init__(1000, fps=30)
        self.attempts, self.raises, self.hang_s = 0, raises, hang_s

    def read(self):
        if 5 <= self._index and self.attempts < 3:
            if self.raises:
                raise OSError("device unplugged")
            time.sleep(0.01)
            return None
        return super().read()

    def reopen(self):
        time.sleep(self.hang_s)
        self.attempts += 1
        if self.attempts >= 3:
            self._start = time.monotonic() - self._index / self.fps  # a camera restarts its clock
        return self.attempts >= 3


def run_unplugged(camera: UnpluggedCamera, frames: int) -> ListSink:
    sink = ListSink()
    settings = Settings(width=640, height=360, fps=30)  # not the camera's 320x240
    runner = LiveRunner(
        camera,
        sink,
        SettingsStore(initial=settings),
        lambda s: FaceReader(FakeDetector([]), FakeClassifier()),
        lost_after_s=0.2,
        retry_s=0.3,
    )
    runner.run(max_frames=frames)
    return sink


def is_message(image: np.ndarray) -> bool:
    return image[0, 0, 0] == 32


@pytest.mark.parametrize("raises", [False, True], ids=["read-gives-none", "read-raises"])
def test_unplugged_camera_keeps_the_output_rate_and_size_then_reconnects(raises):
    camera = UnpluggedCamera(raises=raises)
    sink = run_unplugged(camera, 45)
    messages = [i for i, f in enumerate(sink.frames) if is_message(f)]
    assert camera.attempts == 3 and not is_message(sink.frames[-1])  # the video is back
    assert 10 <= len(messages) and messages == list(range(messages[0], messages[-1] + 1))
    assert {f.shape for f in sink.frames} == {(240, 320, 3)}  # a recording keeps one size through the outage
    gaps = np.diff(np.asarray(sink.times)[messages])
    assert np.median(gaps) == pytest.approx(1 / 30, abs=0.01)  # and its frame rate


def test_a_reopen_that_hangs_does_not_stall_the_video():
    camera = UnpluggedCamera(hang_s=0.5)
    sink = run_unplugged(camera, 60)
    messages = [i for i, f in enumerate(sink.frames) if is_message(f)]
    assert len(messages) >= 30  # three hung attempts: 1.5 s of message frames at 30 fps
    assert np.max(np.diff(np.asarray(sink.times)[messages])) < 0.1


def test_voice_badge_shows_only_when_voice_is_on():
    image = np.full((360, 640, 3), 127, np.uint8)
    happy = np.eye(7, dtype=np.float32)[3]
    frame = Frame(image, 0, 0.0)
    on = render(frame, None, Settings(voice=True), voice=happy)
    assert (on[:40, :200] != 127).any() and (on[60:] == 127).all()
    assert np.array_equal(render(frame, None, Settings(voice=False), voice=happy), image)
    assert np.array_equal(render(frame, None, Settings(voice=True, paused=True), voice=happy), image)


def test_voice_toggle_without_a_microphone_tells_the_user_and_keeps_going(tmp_path, monkeypatch):
    from fercam.apps.app import App
    from fercam.voice.microphone import Microphone, MicrophoneError

    def unplugged(_self):
        raise MicrophoneError("no microphone found")

    monkeypatch.setattr(Microphone, "start", unplugged)  # the same on machines that have one
    messages = []
    store = SettingsStore(tmp_path / "settings.json")
    app = App(store, notify=messages.append)
    store.update(voice=True)
    assert app._listener is None and messages[-1] == "voice is off: no microphone found"


@pytest.mark.parametrize("mode, reads", [("image", 2), ("offline", 1)])
def test_image_mode_reuses_no_second_opinion_from_one_picture_to_the_next(media_dir, tmp_path, mode, reads):
    """The same photo twice in a folder: as unrelated pictures each is read afresh; as frames of one recording
    (a second apart, under the rule's 10 s) the second frame keeps the first frame's second opinion."""
    import shutil

    from fercam.combined import load_combined_reading
    from fercam.detection import load_detector
    from fercam.pipeline import Mode
    from fercam.refresh import RefreshRule
    from fercam.sources import open_source

    for name in ("a.jpg", "b.jpg"):
        shutil.copy(media_dir / "fer_justin.jpg", tmp_path / name)
    reading = load_combined_reading(refresh=RefreshRule(every_s=10.0, close=0.0))
    reader = FaceReader(load_detector(), reading, mode=Mode(mode))
    seen = []
    run_offline(open_source(str(tmp_path)), reader, [], Settings(), on_analysis=lambda a, f: seen.append(a))
    assert [len(a.faces) for a in seen] == [1, 1] and reading.second_reads == reads


ARENA_PROBE = """
import ctypes, sys, tempfile, threading
import numpy as np
if sys.argv[1] == "live":
    from fercam.live import set_up_for_live_threads
    set_up_for_live_threads()
start = threading.Barrier(8)
def work():
    start.wait()  # eight threads allocating at once: glibc would give most of them an arena of their own
    keep = [np.ones(1000 + i) for i in range(3000)]
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
path = tempfile.mktemp()
report = libc.fopen(path.encode(), b"w")
libc.malloc_info(0, report)
libc.fclose(report)
print(open(path).read().count("<heap nr="))
"""


def test_live_threads_share_two_malloc_arenas_so_freed_frames_are_reused():
    """glibc's malloc gives threads that allocate at the same time arenas of their own, each keeping what was freed
    into it (1080p with five faces: 7-9 MB of peak memory); LIVE mode holds the process to two (`malloc_info`)."""
    import subprocess
    import sys
    from pathlib import Path

    if not sys.platform.startswith("linux") or not hasattr(__import__("ctypes").CDLL(None), "malloc_info"):
        pytest.skip("malloc arenas are glibc's")
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    env["PYTHONPATH"] = str(Path(__file__).parents[1])

    def heaps(mode: str) -> int:
        done = subprocess.run([sys.executable, "-c", ARENA_PROBE, mode], capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout)

    assert heaps("plain") > 2 and heaps("live") <= 2
