"""What this machine offers: a display, webcams, video devices, and the fix for a missing camera driver.

One place for each of these facts, shared by the sinks, the CLI, the tray and `fercam doctor`.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
from collections.abc import Iterable
from pathlib import Path

from fercam import linux_driver

# The video devices are read where the driver's diagnosis reads them (standard library only, for the installer).
from fercam.driver_facts import CAMERA_NAME, VideoDevice, video_devices

__all__ = [
    "CAMERA_NAME",
    "DRIVER_FIX",
    "PROBE_TIMEOUT_S",
    "WEBCAM_INDICES",
    "VideoDevice",
    "driver_fix",
    "has_display",
    "probe_webcams",
    "video_devices",
]
WEBCAM_INDICES = range(4)
PROBE_TIMEOUT_S = 3.0
DRIVER_FIX = {
    "Linux": "sudo bash installer/linux/install.sh  (installs v4l2loopback and loads it as 'FER Cam')",
    "Windows": "powershell -ExecutionPolicy Bypass -File installer\\windows\\install.ps1 -UnityCaptureDir <folder with "
    "UnityCaptureFilter64bit.dll>  (or install OBS Studio and click Start Virtual Camera once)",
    "Darwin": "install OBS Studio 30+, click Start Virtual Camera once and allow its camera extension in "
    "System Settings > Privacy & Security",
}


def driver_fix(system: str = platform.system()) -> str:
    """The step that gives this OS the virtual-camera driver; on Linux, the fix for what the system says went
    wrong (fercam.linux_driver), so a failed install is never answered with the same install again."""
    if system == "Linux":
        verdict = linux_driver.diagnose()
        if not verdict.ready:
            return verdict.fix()
    return DRIVER_FIX.get(system, DRIVER_FIX["Linux"])


def has_display(env=os.environ) -> bool:
    """Whether windows and tray icons can be shown (on Linux: an X or Wayland display is set)."""
    if sys.platform.startswith("linux"):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True


def _open_webcam(index: int, found: dict[int, str]) -> None:
    import cv2

    capture = cv2.VideoCapture(index)
    try:
        ok, frame = capture.read() if capture.isOpened() else (False, None)
        if ok and frame is not None:
            found[index] = f"{frame.shape[1]}x{frame.shape[0]}"
    finally:
        capture.release()


def probe_webcams(indices: Iterable[int] = WEBCAM_INDICES, timeout_s: float = PROBE_TIMEOUT_S) -> dict[int, str]:
    """{index: "WxH"} of the cameras that open and deliver a frame; a hung driver costs only `timeout_s`."""
    import cv2

    if platform.system() == "Linux":  # OpenCV index n is /dev/video<n>; skip absent nodes and loopbacks
        own = {d.node for d in video_devices() if d.loopback}
        indices = [i for i in indices if Path(f"/dev/video{i}").exists() and f"/dev/video{i}" not in own]
    found: dict[int, str] = {}
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        for index in indices:
            worker = threading.Thread(target=_open_webcam, args=(index, found), daemon=True)
            worker.start()
            worker.join(timeout_s)
    finally:
        cv2.utils.logging.setLogLevel(level)
    return dict(sorted(found.items()))
