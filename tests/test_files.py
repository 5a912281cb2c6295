"""The user's files (issue 44): written whole through a new private temporary file, never through a planted link;
settings, their backups and old files left 0644 by earlier versions end up readable by the user only."""

from __future__ import annotations

import json
import os
import stat

import pytest

from fercam.files import create_private, write_atomic
from fercam.settings import SettingsStore


def mode(path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_write_atomic_is_private_whatever_the_umask_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "sub" / "window.json"
    old = os.umask(0)
    try:
        write_atomic(target, '{"a": 1}')
        write_atomic(target, b'{"a": 2}')
    finally:
        os.umask(old)
    assert target.read_text() == '{"a": 2}' and mode(target) == 0o600
    assert sorted(p.name for p in target.parent.iterdir()) == ["window.json"]
    with pytest.raises(TypeError):
        write_atomic(target, 3)  # a failed write keeps the old file and removes its temporary one
    assert target.read_text() == '{"a": 2}' and sorted(p.name for p in target.parent.iterdir()) == ["window.json"]


def test_a_link_planted_where_a_file_is_created_is_never_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("mine")
    (tmp_path / "settings.json.20260101-000000.bak").symlink_to(victim)
    with pytest.raises(FileExistsError):
        create_private(tmp_path / "settings.json.20260101-000000.bak", b"x")
    assert victim.read_text() == "mine"


def test_old_settings_and_backups_become_private_and_new_backups_are(tmp_path):
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"show_boxes": False}))
    old_backup = tmp_path / "settings.json.20250101-000000.bak"
    old_backup.write_text("{}")
    for file in (path, old_backup):
        file.chmod(0o644)
    store = SettingsStore(path)
    assert store.get().show_boxes is False and mode(path) == 0o600 and mode(old_backup) == 0o600
    path.write_text(json.dumps({"fps": "fast"}))  # a bad value: backed up at the next load
    SettingsStore(path)
    (new_backup,) = set(tmp_path.glob("settings.json.*.bak")) - {old_backup}
    assert mode(new_backup) == 0o600
    store.update(show_boxes=True)
    assert mode(path) == 0o600 and json.loads(path.read_text())["show_boxes"] is True
