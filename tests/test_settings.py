"""The settings file: nothing in it is dropped without a word, and no backup is ever overwritten."""

from __future__ import annotations

import json
import logging
import resource

import pytest

from fercam.settings import Settings, SettingsStore, default_settings_path


@pytest.fixture
def settings_file():
    path = default_settings_path()
    path.parent.mkdir(parents=True)
    return path


def backups(path):
    return sorted(path.parent.glob("settings.json.*.bak"))


def test_wrong_types_and_unknown_keys_are_reported_by_name_and_the_rest_kept(settings_file, caplog):
    data = {"fps": "60", "width": 640, "mirror": 1, "camera": "3", "bogus": True, "height": 99999}
    settings_file.write_text(json.dumps(data))
    with caplog.at_level(logging.WARNING):
        store = SettingsStore(settings_file)
    assert store.get() == Settings(width=640, camera="3")
    problems = " ".join(store.problems)
    for name in ("fps", "mirror", "'bogus'", "height"):
        assert name in problems and name in caplog.text
    (kept,) = backups(settings_file)
    assert json.loads(kept.read_text()) == data  # the user's original, before the first toggle rewrites it
    store.update(show_emoji=False)
    assert json.loads(kept.read_text()) == data


@pytest.mark.parametrize(
    "text",
    ['{"show_boxes": false,', "[" * 100_000 + "]" * 100_000, '"just a string"', b"\xff\xfe\x00".decode("latin-1")],
    ids=["cut-off", "deeply-nested", "not-an-object", "not-utf8"],
)
def test_an_unreadable_file_is_kept_and_defaults_are_used(settings_file, text):
    settings_file.write_text(text, encoding="latin-1")
    store = SettingsStore(settings_file)
    assert store.get() == Settings() and store.problems
    (kept,) = backups(settings_file)
    assert kept.read_text(encoding="latin-1") == text


def test_a_second_corruption_never_overwrites_the_first_backup(settings_file):
    settings_file.write_text("first broken file")
    SettingsStore(settings_file)
    settings_file.write_text("second broken file")
    SettingsStore(settings_file)
    assert sorted(b.read_text() for b in backups(settings_file)) == ["first broken file", "second broken file"]


def test_a_huge_file_is_refused_without_reading_it(settings_file):
    with settings_file.open("w") as f:
        f.write('{"width": 640, "pad": "')
        f.write("x" * (50 * 1024 * 1024))
        f.write('"}')
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    store = SettingsStore(settings_file)
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert store.get() == Settings() and "larger than" in store.problems[0]
    assert grown_mb < 100  # the 400 MB file of the bug report took 838 MB


def test_a_good_file_is_neither_reported_nor_backed_up(settings_file):
    SettingsStore(settings_file).update(width=640, detector="yunet")
    store = SettingsStore(settings_file)
    assert store.get() == Settings(width=640, detector="yunet") and store.problems == []
    assert backups(settings_file) == []


@pytest.mark.parametrize(
    "camera",
    ["x" * 300, "a/" + "b" * 256, "y" * 1025, "0\n1", "", "100", "tcp://127.0.0.1:9", "file:///etc/passwd", "http://"],
)
def test_a_saved_camera_that_cannot_be_a_camera_falls_back_to_the_default(settings_file, camera):
    settings_file.write_text(json.dumps({"camera": camera, "fps": 25}))
    store = SettingsStore(settings_file)
    assert store.get() == Settings(fps=25) and store.problems[0].startswith("camera")
    (kept,) = backups(settings_file)
    assert json.loads(kept.read_text())["camera"] == camera


@pytest.mark.parametrize(
    "camera",
    ["0", "12", "/videos/clip.mp4", "clip.mp4", "C:\\videos\\clip.mp4", "rtsp://[::1]:554/live", "HTTPS://cam"],
)
def test_webcams_files_and_stream_urls_of_the_allowed_schemes_are_cameras(camera):
    assert Settings().checked({"camera": camera}).camera == camera


def test_a_change_that_breaks_the_schema_is_refused_by_name():
    with pytest.raises(ValueError, match="^fps must be from 1 to 240, not 500$"):
        Settings().checked({"fps": 500})
    with pytest.raises(ValueError, match="^detector must be"):
        Settings().checked({"detector": "../x"})
