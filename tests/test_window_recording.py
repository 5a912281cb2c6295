"""A recording made by the window's FER Cam lasts as long as the session and plays each frame at its own time
(issue 44): a 24 fps source whose rate drops to 10 fps and back, recorded through settings changes."""

from __future__ import annotations

import json
import subprocess
import time

from conftest import requires_system_packages
from test_window_security import call, state, wait_until
from window_helpers import serve, stop

# 10 fps (5 frames kept of each 12) for its first 3 s, then 24 fps to 12 s; it loops, and starts again on each change
# of size or rate (the source is reopened): the rate drops and comes back several times.
TEN_FPS = "+".join(f"eq(mod(n,12),{k})" for k in (0, 2, 5, 7, 10))
SELECT = f"select='gte(t,3)+{TEN_FPS}'"
CHANGES = [
    {"fps": 15},
    {"width": 640, "height": 360},
    {"show_boxes": False},
    {"fps": 30},
    {"mirror": True},
    {"width": 1280, "height": 720},
    {"fps": 24},
    {"show_boxes": True},
]


def test_a_recording_lasts_the_session_through_a_rate_drop_and_changes(tmp_path):
    requires_system_packages("ffmpeg")
    clip = tmp_path / "drops.mp4"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=24:duration=12",
         "-vf", SELECT, "-fps_mode", "vfr", "-c:v", "libx264", "-preset", "ultrafast", str(clip)],
        check=True, timeout=60,
    )  # fmt: skip
    proc, url = serve(clip, tmp_path)
    served = {"port": int(url.split(":")[2].split("/")[0]), "token": url.split("token=")[1]}
    served["own"] = f"http://127.0.0.1:{served['port']}"
    try:
        wait_until(lambda: state(served)["status"]["frames_sent"] > 0, 60, "the video never started")
        started = time.monotonic()
        for changes in CHANGES:  # one every 2 s, each restarting the video or not
            time.sleep(2.0)
            status, _headers, body = call(served, "/api/settings", method="POST", body=changes)
            assert status == 200, body
        time.sleep(2.0)
        assert call(served, "/api/quit", method="POST", body={})[0] == 200
        session = time.monotonic() - started
        assert proc.wait(30) == 0
    finally:
        stop(proc)
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time",
         "-of", "json", str(tmp_path / "out.mp4")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(tmp_path / "out.mp4"), "-f", "null", "-"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert decoded.returncode == 0 and decoded.stderr == ""  # every frame decodes, at a time of its own
    times = sorted(float(p["pts_time"]) for p in json.loads(probe.stdout)["packets"])
    slots = [(b - a) * 30 for a, b in zip(times, times[1:])]
    duration = times[-1] + 1 / 30
    pictures = distinct_pictures(tmp_path / "out.mp4")
    rate = pictures / duration
    print(f"session {session:.2f} s, recording {duration:.2f} s: {pictures} pictures ({rate:.1f}/s)")
    assert all(abs(n - round(n)) < 0.01 and round(n) >= 1 for n in slots)  # on the output's grid of 1/30 s ...
    rate_read = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "stream=r_frame_rate", "-of", "csv=p=0",
         str(tmp_path / "out.mp4")],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    assert rate_read.stdout.strip() == "30/1"  # ... so tools read its rate as the output's
    assert abs(duration - session) < 1.0
    # New pictures come at the source's rate, between 10 and 24 a second: one after another at 1/30 s (a 24 fps
    # camera played fast), its 24 fps parts would make 30 a second.
    assert 10 < rate < 24


def distinct_pictures(path) -> int:
    """How many frames differ from the one before (a paused or repeated picture is the same one again)."""
    import av
    import numpy as np

    count, last = 0, None
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            image = frame.to_ndarray(format="gray").astype(np.int16)
            count += last is None or np.abs(image - last).mean() > 0.5
            last = image
    return count
