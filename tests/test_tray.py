"""The tray menu over a real settings store and a real App (a shared clip in, an MP4 file out)."""

from __future__ import annotations

import os
import shutil
import time

import cv2
import pytest

from fercam.apps.app import App
from fercam.apps.tray.tray import TOGGLES, Tray, icon_image
from fercam.settings import SettingsStore, default_settings_path


class ObservedApp(App):
    """The real App, remembering which of start / stop the tray called."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def start(self) -> None:
        self.calls.append("start")
        super().start()

    def stop(self, **options) -> None:
        self.calls.append("stop")
        super().stop(**options)


@pytest.fixture
def store():
    return SettingsStore(default_settings_path())


@pytest.fixture
def app(store, media_dir, tmp_path):
    app = ObservedApp(store, sink_spec=f"file:{tmp_path / 'out.mp4'}", source_spec=str(media_dir / "fer_test.mp4"))
    yield app
    App.stop(app)  # never leave a video thread behind


@pytest.fixture
def tray(app, store):
    return Tray(app, store, cameras=[0, 1])


def texts(menu) -> list[str]:
    return [item.text for item in menu.items]


def item_named(menu, prefix: str):
    return next(item for item in menu.items if item.text.startswith(prefix))


def test_toggles_flip_and_persist(tray, store):
    for _title, key in TOGGLES:
        if key == "voice":
            continue  # needs a microphone: see the next test
        before = getattr(store.get(), key)
        tray.toggle(key)
        assert getattr(store.get(), key) is not before, key
        assert getattr(SettingsStore(default_settings_path()).get(), key) is not before, key


def test_voice_stays_on_only_with_a_working_microphone(tray, app, store):
    app.notify = tray.notify  # as Tray.run wires it
    tray.toggle("voice")
    if store.get().voice:
        assert app._listener is not None  # this machine has a microphone
    else:  # the menu and the window must not claim "Voice: on" while nothing listens
        assert tray.toggle_label("Voice", "voice") == "Voice: off"
        assert app.notices[-1].startswith("voice is off: ") and "voice is off" in tray.status_text()


def test_toggle_labels_carry_their_state(tray):
    assert tray.toggle_label("Boxes", "show_boxes") == "Boxes: on"
    tray.toggle("show_boxes")
    assert tray.toggle_label("Boxes", "show_boxes") == "Boxes: off"
    assert tray.toggle_label("Probabilities", "show_probs") == "Probabilities: off"


def test_long_notices_are_cut_in_the_menu_and_kept_whole_for_the_window(tray, app):
    app.notify = tray.notify
    fix = "no virtual camera available (" + "x" * 200 + "); fix: run `sudo bash installer/linux/install.sh`"
    app.report(fix)
    assert len(tray.status_text()) < 140 and tray.status_text().endswith("(whole text in the window)")
    assert app.notices[-1] == fix


def test_choosing_a_camera_saves_it_only_once_it_opens(tray, app, store):
    app.notify = tray.notify
    app.start()  # the clip given as --source plays
    clip, runner = app.source_spec, app.runner
    tray.set_camera(1)  # replaces the clip, if webcam 1 opens
    if store.get().camera == "1":  # this machine has a webcam 1
        assert app.source_spec is None and app.runner is not runner and tray.is_camera(1)
        assert SettingsStore(default_settings_path()).get().camera == "1"
    else:  # said whole, in the menu and the window; the clip plays on, and nothing was saved
        assert app.notices[-1].startswith("no webcam at index 1")
        assert app.source_spec == clip and app.runner is runner and not runner.stopped
        assert SettingsStore(default_settings_path()).get().camera == "0"
        assert tray.camera_label().endswith("fer_test.mp4")
    assert app.calls == ["start"]  # no restart through the back door: `apply` moves the video itself


def test_quit_finishes_the_output_file(tray, app, tmp_path):
    app.start()
    deadline = time.monotonic() + 10
    while app.runner.stats.frames_sent < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "fps" in tray.status_text()
    tray.quit()
    frames = int(cv2.VideoCapture(str(tmp_path / "out.mp4")).get(cv2.CAP_PROP_FRAME_COUNT))
    assert frames >= 5  # the pipeline really wrote video, and quit closed the file


def test_choosing_the_current_camera_again_does_not_restart(tray, app):
    app.source_spec = None  # the webcam from the settings is the source
    tray.set_camera(0)
    assert app.calls == []


def test_a_file_source_checks_no_camera(tray, app):
    assert tray.camera_label().endswith("fer_test.mp4")
    assert not tray.is_camera(0)
    camera_0 = item_named(item_named(tray.menu(), "Camera:").submenu, "Camera 0")
    assert camera_0.checked is False


def test_choosing_a_detector_updates_settings_without_a_restart(tray, app, store):
    tray.set_detector("yunet")
    assert store.get().detector == "yunet"
    assert SettingsStore(default_settings_path()).get().detector == "yunet"
    assert app.calls == []  # the inference thread reloads the detector by itself


def test_quit_stops_the_app(tray, app):
    app.start()
    assert app.runner is not None
    tray.quit()
    assert app.calls == ["start", "stop"]
    assert app.runner is None and tray.status_text() == "FER Cam: stopped"


def test_start_errors_reach_the_status_line(tray, app, tmp_path):
    app.notify = tray.notify  # as Tray.run wires it
    app.source_spec = str(tmp_path / "missing.mp4")
    app.start()
    assert app.runner is None
    assert tray.status_text().startswith("FER Cam: stopped | no such file or folder")
    assert app.notices[-1].startswith("no such file or folder")  # whole, for the window


def test_menu_shows_status_toggles_and_choices(tray):
    menu = tray.menu()
    labels = texts(menu)
    assert labels[0] == "FER Cam: stopped"
    assert labels[1] == "Open FER Cam window" and menu.items[1].default  # a click on trays without menus
    assert labels[2 : 2 + len(TOGGLES)] == [
        "Boxes: on",
        "Labels: on",
        "Emoji: on",
        "Probabilities: off",
        "Voice: off",
        "Mirror: off",
        "Body cues: off",
    ]
    assert labels[2 + len(TOGGLES) :] == [
        "Show unsure faces as: unsure",
        "Pause overlays",
        labels[-3],
        "Detector: mtcnn",
        "Quit",
    ]
    assert labels[-3].startswith("Camera: ") and labels[-3].endswith("fer_test.mp4")
    assert not menu.items[0].enabled
    assert texts(item_named(menu, "Camera:").submenu) == ["Camera 0", "Camera 1"]
    assert texts(item_named(menu, "Detector:").submenu) == ["mtcnn", "yunet"]
    assert texts(item_named(menu, "Show unsure faces as:").submenu) == ["label", "unsure"]


def test_the_unsure_choice_in_the_tray_changes_the_setting(tray):
    unsure = item_named(tray.menu(), "Show unsure faces as:").submenu
    assert [item.checked for item in unsure.items] == [False, True]  # the default: "unsure"
    unsure.items[0](None)  # the user picks "label"
    assert tray.store.get().unsure_faces == "label"
    assert "Show unsure faces as: label" in texts(tray.menu())


def test_detectors_that_cannot_run_here_are_disabled_with_their_reason(app, store):
    tray = Tray(app, store, detectors={"mtcnn": None, "mtcnn-reference": "needs tensorflow"})
    items = item_named(tray.menu(), "Detector:").submenu.items
    assert [(i.text, i.enabled) for i in items] == [("mtcnn", True), ("mtcnn-reference (needs tensorflow)", False)]


def test_no_webcam_is_said_not_offered(app, store):
    tray = Tray(app, store, cameras=[])
    assert texts(item_named(tray.menu(), "Camera:").submenu) == ["No webcam found"]


def test_open_window_starts_the_browser_on_the_window_url(app, store, monkeypatch):
    opened = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    links = iter(["http://127.0.0.1:1/launch/one", "http://127.0.0.1:1/launch/two"])  # each opening a code of its own
    tray = Tray(app, store, window_link=lambda: next(links))
    item_named(tray.menu(), "Open FER Cam window")(None)
    deadline = time.monotonic() + 5
    while not opened and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened == ["http://127.0.0.1:1/launch/one"]


def test_menu_pause_and_quit_items_act(tray, app, store):
    menu = tray.menu()
    pause = item_named(menu, "Pause overlays")
    assert pause.checked is False
    pause(None)  # what pystray does on a click: item(icon) -> action(icon, item)
    assert store.get().paused is True and pause.checked is True
    item_named(menu, "Quit")(None)
    assert app.calls == ["stop"]


# pystray calls a two-parameter action with (icon, item): clicking must still act on the right key.
def test_clicking_a_toggle_in_the_menu_flips_it(tray, store):
    boxes = item_named(tray.menu(), "Boxes")
    assert boxes.checked is True
    boxes(None)
    assert store.get().show_boxes is False
    assert boxes.text == "Boxes: off" and boxes.checked is False


def test_clicking_a_camera_in_the_menu_selects_it(tray, app, store):
    camera_1 = item_named(item_named(tray.menu(), "Camera:").submenu, "Camera 1")
    camera_1(None)
    if store.get().camera == "1":
        assert camera_1.checked is True
    else:  # no webcam 1 here: the click asked for it all the same
        assert app.notices[-1].startswith("no webcam at index 1") and camera_1.checked is False


def test_clicking_a_detector_in_the_menu_selects_it(tray, app, store):
    menu = tray.menu()
    yunet = item_named(item_named(menu, "Detector:").submenu, "yunet")
    yunet(None)
    assert store.get().detector == "yunet"
    assert yunet.checked is True and item_named(menu, "Detector:").text == "Detector: yunet"
    assert app.calls == []


def test_icon_image_is_rgba():
    image = icon_image()
    assert image.mode == "RGBA" and image.size == (64, 64)
    alpha = image.getchannel("A")
    assert alpha.getpixel((0, 0)) == 0 and alpha.getpixel((32, 32)) == 255


def test_voice_is_disabled_with_its_reason_where_no_microphone_works(app, store):
    tray = Tray(app, store, voice_problem="no microphone found")
    voice = item_named(tray.menu(), "Voice")
    assert voice.text == "Voice: off (no microphone found)" and not voice.enabled
    assert len(tray.menu().items) == len(Tray(app, store).menu().items)  # in the same place


def test_unsure_faces_changes_through_apply_like_every_other_setting(tray, app, store):
    tray.set_unsure_faces("label")
    assert store.get().unsure_faces == "label"
    App.stop(app)  # quitting: `apply` refuses every change from now on, the tray's too
    tray.set_unsure_faces("unsure")
    assert store.get().unsure_faces == "label" and app.notices[-1] == "FER Cam is quitting"


def test_a_folder_of_photos_can_be_the_camera(app, store, media_dir, tmp_path):
    app.start()
    empty, photos = tmp_path / "empty", tmp_path / "photos"
    empty.mkdir(), photos.mkdir()
    shutil.copy(media_dir / "two_people.jpg", photos / "b.jpg")
    os.mkfifo(photos / "a.jpg")  # not a file: reading it would block, so it is not one of the photos
    with pytest.raises(ValueError, match="^camera: cannot play"):
        app.apply({"camera": str(empty)})
    runner = app.runner
    app.apply({"camera": str(photos)})
    assert store.get().camera == str(photos) and app.runner is not runner
    deadline, frames = time.monotonic() + 10, 0
    while frames < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
        frames = app.runner.stats.frames_sent
    assert frames >= 5 and not app.notices
