"""Real sources, sinks and settings: files, folders, the pyvirtualcam path, the settings file."""

from __future__ import annotations

import sys
import time

import cv2
import numpy as np
import pytest
from clips import write_clip
from conftest import MjpegCamera

from fercam.contracts import SourceError
from fercam.devices import VideoDevice, driver_fix, video_devices
from fercam.pictures import ImageSource, StillCamera
from fercam.settings import Settings, SettingsStore, default_settings_path
from fercam.sinks import (
    SINK_HELP,
    SinkError,
    VideoFileSink,
    VirtualCameraSink,
    camera_candidates,
    letterbox,
    open_sink,
)
from fercam.source_specs import SOURCE_HELP
from fercam.sources import VideoFileSource, open_source

FER_TEST_FRAMES = 115
BLUE, RED = (255, 0, 0), (0, 0, 255)  # BGR


@pytest.fixture(autouse=True)
def _unregister_test_backend():
    """conftest's `recording_backend` registers "fercam-test" for good; `fercam doctor` would then find it."""
    yield
    import pyvirtualcam

    pyvirtualcam.camera.BACKENDS.pop("fercam-test", None)


@pytest.fixture
def clip(media_dir):
    return media_dir / "fer_test.mp4"


def read_all(source, limit: int = 10_000) -> list:
    frames = []
    while len(frames) < limit and (frame := source.read()) is not None:
        frames.append(frame)
    return frames


def video_frames(path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def two_colour_image(width: int = 320, height: int = 240) -> np.ndarray:
    image = np.zeros((height, width, 3), np.uint8)
    image[:, : width // 2] = BLUE
    image[:, width // 2 :] = RED
    return image


def assert_one_line(exc: pytest.ExceptionInfo, *words: str) -> None:
    message = str(exc.value)
    assert message and "\n" not in message
    for word in words:
        assert word in message, (word, message)


# -- sources ----------------------------------------------------------------------------------


def test_video_file_reads_every_frame_in_order(clip):
    source = VideoFileSource(clip)
    frames = read_all(source)
    source.close()
    assert len(frames) == FER_TEST_FRAMES
    assert [f.index for f in frames] == list(range(FER_TEST_FRAMES))
    times = np.array([f.timestamp for f in frames])
    assert times[0] == 0.0 and np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx((FER_TEST_FRAMES - 1) / 25, rel=0.01)  # the clip's own 25 fps
    assert frames[0].image.shape == (336, 596, 3)
    assert not source.live


def test_realtime_video_is_paced_like_a_camera(clip):
    start = time.monotonic()
    source = VideoFileSource(clip, realtime=True)
    frames = read_all(source, limit=10)
    elapsed = time.monotonic() - start
    source.close()
    assert source.live
    assert len(frames) == 10
    assert elapsed >= 0.25  # 9 frame intervals at 25 fps are 0.36 s; unpaced reading takes a few ms
    assert all(b.timestamp > a.timestamp for a, b in zip(frames, frames[1:]))


def test_looped_video_restarts_at_the_first_frame(clip):
    source = VideoFileSource(clip, loop=True)
    frames = read_all(source, limit=FER_TEST_FRAMES + 5)
    source.close()
    assert len(frames) == FER_TEST_FRAMES + 5
    assert frames[FER_TEST_FRAMES].index == FER_TEST_FRAMES  # indices keep counting
    again = frames[FER_TEST_FRAMES].image.astype(int)
    assert np.abs(again - frames[0].image).mean() < 2  # the clip's first picture again


def test_size_resizes_every_frame(clip):
    source = VideoFileSource(clip, size=(320, 180))
    frames = read_all(source, limit=3)
    source.close()
    assert [f.image.shape for f in frames] == [(180, 320, 3)] * 3


def test_a_video_larger_than_1080p_gives_every_frame_in_order(tmp_path):
    # Up to 1080p a video decodes on one thread; larger ones on FFmpeg's frame threads, which hold frames back
    # and must still give every one, in order, at the end of the file.
    shades = [0, 40, 80, 120, 160, 200]
    write_clip(
        tmp_path / "uhd.mp4", [np.full((2160, 3840, 3), s, np.uint8) for s in shades], np.zeros(8000, np.int16), 25
    )
    source = VideoFileSource(tmp_path / "uhd.mp4")
    frames = read_all(source)
    source.close()
    assert [f.image.shape for f in frames] == [(2160, 3840, 3)] * len(shades)
    assert [round(float(f.image.mean())) for f in frames] == pytest.approx(shades, abs=6)  # video levels round a little
    assert [f.timestamp for f in frames] == pytest.approx([i / 25 for i in range(len(shades))], abs=1e-3)


def test_image_source_gives_the_image_once(media_dir):
    path = media_dir / "fr_obama.jpg"
    source = open_source(str(path))
    assert isinstance(source, ImageSource)
    frame = source.read()
    assert frame.index == 0
    assert np.array_equal(frame.image, cv2.imread(str(path)))
    assert source.read() is None


def test_folder_source_reads_images_by_name_and_ignores_other_files(media_dir, tmp_path):
    justin, obama = cv2.imread(str(media_dir / "fer_justin.jpg")), cv2.imread(str(media_dir / "fr_obama.jpg"))
    cv2.imwrite(str(tmp_path / "b_obama.png"), obama)
    cv2.imwrite(str(tmp_path / "a_justin.png"), justin)
    (tmp_path / "notes.txt").write_text("not an image")
    source = open_source(str(tmp_path))
    frames = read_all(source)
    assert [f.index for f in frames] == [0, 1]
    assert np.array_equal(frames[0].image, justin) and np.array_equal(frames[1].image, obama)  # PNG is lossless


def test_a_photo_as_a_camera_repeats_it_at_the_output_rate_fitted_to_the_output(media_dir):
    source = open_source(str(media_dir / "fr_obama.jpg"), realtime=True, width=320, height=240, fps=20)
    assert isinstance(source, StillCamera) and source.live and source.frame_count is None
    started = time.monotonic()
    frames = [source.read() for _ in range(11)]
    elapsed = time.monotonic() - started
    time.sleep(0.5)  # the machine stalls: afterwards no burst of the frames missed
    started = time.monotonic()
    after = [source.read() for _ in range(5)]
    after_s = time.monotonic() - started
    source.close()
    assert source.read() is None  # closed: the capture thread ends
    assert elapsed >= 0.45 and after_s >= 0.15  # 10 and 4 intervals at 20 fps: paced like a camera
    frames += after
    assert [f.index for f in frames] == list(range(16)) and all(
        b.timestamp > a.timestamp for a, b in zip(frames, frames[1:])
    )
    expected = cv2.resize(cv2.imread(str(media_dir / "fr_obama.jpg")), (192, 240), interpolation=cv2.INTER_AREA)
    assert all(np.array_equal(f.image, expected) for f in frames)  # 455x569 shrunk into 320x240, never stretched


def test_a_folder_as_a_camera_shows_each_picture_in_turn_then_again(media_dir, tmp_path):
    (tmp_path / "a.jpg").write_bytes((media_dir / "fer_justin.jpg").read_bytes())
    (tmp_path / "b.jpg").write_bytes((media_dir / "fr_obama.jpg").read_bytes())
    source, shown = StillCamera(tmp_path, fps=50, slide_s=0.3), []
    deadline = time.monotonic() + 5
    while len(shown) < 3 and time.monotonic() < deadline:  # the pictures in the order they appear
        shape = source.read().image.shape[:2]
        if not shown or shape != shown[-1]:
            shown.append(shape)
    source.close()
    assert shown == [(384, 381), (569, 455), (384, 381)]  # a.jpg, b.jpg, a.jpg again


def test_missing_file_is_a_clear_source_error(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(SourceError) as exc:
        open_source(str(missing))
    assert_one_line(exc, str(missing), "no such file", SOURCE_HELP)


def test_unreadable_video_is_a_clear_source_error(tmp_path):
    fake = tmp_path / "x.mp4"
    fake.write_text("this is not a video\n" * 20)
    with pytest.raises(SourceError) as exc:
        open_source(str(fake))
    assert_one_line(exc, str(fake), "cannot read video")


def test_empty_folder_is_a_clear_source_error(tmp_path):
    (tmp_path / "readme.txt").write_text("no pictures here")
    with pytest.raises(SourceError) as exc:
        open_source(str(tmp_path))
    assert_one_line(exc, "no images in folder", str(tmp_path))


def test_missing_webcam_is_a_source_error_that_lists_the_sources():
    with pytest.raises(SourceError) as exc:
        open_source("7")
    assert_one_line(exc, "index 7", SOURCE_HELP)


# -- sinks ------------------------------------------------------------------------------------


def test_video_file_sink_writes_every_frame(tmp_path):
    path = tmp_path / "out.mp4"
    sink = VideoFileSink(path, fps=25)
    for i in range(12):
        sink.send(np.full((240, 320, 3), 10 + 20 * i, np.uint8))
    sink.close()
    frames = video_frames(path)
    assert sink.frames == 12 and len(frames) == 12
    assert frames[0].shape == (240, 320, 3)
    assert abs(int(frames[-1].mean()) - (10 + 20 * 11)) < 8  # the last frame really is the last one sent


def test_video_file_sink_in_a_missing_folder_is_a_sink_error(tmp_path):
    with pytest.raises(SinkError, match="folder does not exist"):
        open_sink(f"file:{tmp_path / 'no' / 'out.mp4'}")


def test_unknown_sink_lists_the_sinks():
    with pytest.raises(SinkError) as exc:
        open_sink("nonsense")
    assert_one_line(exc, "nonsense", SINK_HELP)


def test_virtual_camera_letterboxes_and_keeps_bgr(recording_backend):
    sink = VirtualCameraSink(width=1280, height=720, fps=30, backend="fercam-test")
    sink.send(two_colour_image(320, 240))
    sink.send(np.zeros((720, 1280, 3), np.uint8))
    sink.close()
    (camera,) = recording_backend.instances
    assert camera.closed
    assert (camera.width, camera.height) == (1280, 720)
    first = camera.frames[0]
    assert first.shape == (720, 1280, 3)
    # 320x240 scaled by 3 is 960x720, centred: black bars of 160 px left and right
    assert tuple(first[360, 80]) == (0, 0, 0) and tuple(first[360, 1200]) == (0, 0, 0)
    assert tuple(first[360, 300]) == BLUE and tuple(first[360, 980]) == RED
    assert not camera.frames[1].any()


def test_virtual_camera_via_open_sink_uses_the_configured_size(recording_backend):
    sink = open_sink("virtualcam", width=640, height=360, fps=30, vcam_backend="fercam-test")
    sink.send(two_colour_image(1280, 720))
    sink.close()
    (camera,) = recording_backend.instances
    assert camera.fps == 30
    assert camera.frames[0].shape == (360, 640, 3)
    assert tuple(camera.frames[0][180, 100]) == BLUE and tuple(camera.frames[0][180, 540]) == RED


def test_unknown_virtual_camera_backend_names_the_fix():
    with pytest.raises(SinkError) as exc:
        VirtualCameraSink(backend="no-such-backend")
    assert_one_line(exc, "no-such-backend", driver_fix())


def test_camera_candidates_pick_the_fer_cam_loopback_on_linux(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    devices = [
        VideoDevice("/dev/video0", "Integrated Camera", False),
        VideoDevice("/dev/video4", "Dummy video device", True),
        VideoDevice("/dev/video5", "FER Cam", True),
    ]
    monkeypatch.setattr("fercam.sinks.video_devices", lambda: devices)
    assert camera_candidates(None) == [("v4l2loopback", "/dev/video5")]
    monkeypatch.setattr("fercam.sinks.video_devices", lambda: devices[:1])
    assert camera_candidates(None) == [("v4l2loopback", None)]  # pyvirtualcam then picks any loopback
    assert camera_candidates("obs") == [("obs", None)]


def test_video_devices_reads_the_labels_from_sysfs(tmp_path):
    for name, label in (("video0", "Integrated Camera"), ("video5", "FER Cam")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "name").write_text(label + "\n")
    (tmp_path / "video9").mkdir()  # no name file
    found = {d.node: d.name for d in video_devices(tmp_path)}
    assert found == {"/dev/video0": "Integrated Camera", "/dev/video5": "FER Cam", "/dev/video9": "?"}
    assert video_devices(tmp_path / "missing") == []


def test_headless_run_to_the_virtual_camera_sends_annotated_frames(media_dir, recording_backend, monkeypatch):
    import fercam.apps.headless
    from fercam.pipeline import ReaderConfig, make_face_reader

    settings = Settings(width=640, height=360)
    reader = make_face_reader(ReaderConfig.from_settings(settings))  # up front: overlays appear within 20 frames
    monkeypatch.setattr(fercam.apps.headless, "make_live_reader", lambda _config: reader)
    clip = media_dir / "fer_test.mp4"
    sent = fercam.apps.headless.run_headless(
        str(clip), "virtualcam", settings, vcam_backend="fercam-test", max_frames=20
    )
    (camera,) = recording_backend.instances
    assert sent == 20 and len(camera.frames) == 20 and camera.closed
    assert all(f.shape == (360, 640, 3) for f in camera.frames)
    raw = [letterbox(image, 640, 360) for image in video_frames(clip)[:20]]
    changed = [np.count_nonzero(np.abs(r.astype(int) - f).max(axis=2) > 40) for r, f in zip(raw, camera.frames)]
    assert changed[0] < 1000  # the clip itself, letterboxed to 640x360 (no analysis exists yet) ...
    assert max(changed) > 1000  # ... with the overlays drawn once the first analysis is in


def test_headless_run_of_a_photo_to_the_virtual_camera_keeps_sending_it_annotated(
    media_dir, recording_backend, monkeypatch
):
    """A photo into a live output: LIVE mode, the picture at the output rate, with its two faces boxed."""
    import fercam.apps.headless
    from fercam.pipeline import ReaderConfig, make_face_reader

    settings = Settings(width=640, height=360, fps=30)
    reader = make_face_reader(ReaderConfig.from_settings(settings))
    monkeypatch.setattr(fercam.apps.headless, "make_live_reader", lambda _config: reader)
    photo = media_dir / "two_people.jpg"
    started = time.monotonic()
    sent = fercam.apps.headless.run_headless(
        str(photo), "virtualcam", settings, vcam_backend="fercam-test", max_frames=45
    )
    elapsed = time.monotonic() - started
    (camera,) = recording_backend.instances
    assert sent == 45 and len(camera.frames) == 45 and elapsed >= 1.2  # 1.5 s of video at 30 fps, not one frame
    raw = letterbox(cv2.resize(cv2.imread(str(photo)), (576, 360), interpolation=cv2.INTER_AREA), 640, 360)
    changed = [np.count_nonzero(np.abs(raw.astype(int) - f).max(axis=2) > 40) for f in camera.frames]
    assert max(changed) > 1000  # the overlays, once the first analysis is in


# -- settings ---------------------------------------------------------------------------------


def test_settings_persist_across_stores(tmp_path):
    path = default_settings_path()
    assert path.parent == tmp_path / "config"  # the per-test FERCAM_CONFIG_DIR
    SettingsStore(path).update(show_boxes=False, camera="2", width=640)
    again = SettingsStore(path).get()
    assert (again.show_boxes, again.camera, again.width) == (False, "2", 640)
    assert again.show_labels is True  # untouched keys keep their defaults


def test_settings_store_notifies_subscribers():
    store = SettingsStore(default_settings_path())
    seen: list[Settings] = []
    store.subscribe(seen.append)
    store.update(paused=True)
    store.update(detector="yunet")
    assert [(s.paused, s.detector) for s in seen] == [(True, "mtcnn"), (True, "yunet")]
    assert store.get() is seen[-1]


@pytest.fixture
def mjpeg_stream(media_dir):
    """The clip's first frame served as an MJPEG stream over HTTP on localhost."""
    capture = cv2.VideoCapture(str(media_dir / "fer_test.mp4"))
    camera = MjpegCamera(cv2.imencode(".jpg", capture.read()[1])[1].tobytes())
    capture.release()
    camera.start()
    yield camera.url
    camera.stop()


def test_stream_url_source_reads_frames_over_http(mjpeg_stream):
    source = open_source(mjpeg_stream)
    frames = [source.read() for _ in range(10)]
    source.close()
    assert source.live and all(f is not None and f.image.shape == (336, 596, 3) for f in frames)
    assert [f.index for f in frames] == list(range(10))


def test_unreachable_stream_is_a_clear_source_error():
    with pytest.raises(SourceError, match="cannot open stream"):
        open_source("rtsp://127.0.0.1:9/nothing")
