"""`fercam doctor`: every check's pass and fail path with fakes, and one real run on this headless machine."""

from __future__ import annotations

import dataclasses
import glob
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from fercam import devices, linux_driver
from fercam.apps import doctor, doctor_devices, doctor_software
from fercam.apps.doctor_software import Check, Requirement
from fercam.devices import VideoDevice
from fercam.driver_facts import DriverFacts
from fercam.linux_driver import Diagnosis


def test_check_line_formats() -> None:
    assert Check("a", True, "fine", "never shown").line() == "[ok]   a: fine"
    assert Check("b", False, "broken", "do x").line() == "[FAIL] b: broken -> fix: do x"
    assert Check("c", False, "meh", "do y", critical=False).line() == "[warn] c: meh -> fix: do y"


def test_python_version() -> None:
    assert doctor_software.check_python((3, 11, 2)).ok
    old = doctor_software.check_python((3, 9, 1))
    assert not old.ok and "3.9.1" in old.detail and old.fix


OPENCV = Requirement("opencv", "cv2", ("opencv-python",), below_major=5)


@pytest.mark.parametrize(
    ("version", "ok", "detail"),
    [("4.10.0", True, "4.10.0"), ("5.0.0", False, "need < 5"), (None, False, "not installed")],
)
def test_package_versions(version: str | None, ok: bool, detail: str) -> None:
    check = doctor_software.check_package(OPENCV, version_of=lambda _req: version)
    assert check.ok is ok and detail in check.detail
    assert ok or 'pip install "opencv-python<5"' in check.fix


def test_package_import_error_and_optional_package() -> None:
    def broken(_req: Requirement) -> str:
        raise ImportError("libGL.so.1: cannot open shared object file")

    assert "libGL" in doctor_software.check_package(OPENCV, version_of=broken).detail
    tray = doctor_software.check_package(
        Requirement("pystray", "pystray", ("pystray",), critical=False), version_of=lambda _r: None
    )
    assert tray.line().startswith("[warn]")


def test_package_version_reads_metadata() -> None:
    assert doctor_software.package_version(Requirement("numpy", "numpy", ("numpy",))) == np.__version__
    assert doctor_software.package_version(Requirement("nope", "fercam_no_such_module", ("nope",))) is None


class FakeClassifier:
    path = Path("models/fer_cnn.tflite")

    def __init__(self, shape: tuple[int, ...] = (1, 7)) -> None:
        self.shape = shape

    def predict_faces(self, faces: np.ndarray) -> np.ndarray:
        assert faces.shape == (1, 48, 48) and faces.dtype == np.uint8
        return np.full(self.shape, 1 / 7, np.float32)


def test_model_check() -> None:
    assert doctor_software.check_model(loader=FakeClassifier).ok
    wrong = doctor_software.check_model(loader=lambda: FakeClassifier((1, 3)))
    assert not wrong.ok and "(1, 3)" in wrong.detail

    def missing() -> FakeClassifier:
        raise ValueError("model file not found: models/fer_cnn.tflite")

    failed = doctor_software.check_model(loader=missing)
    assert not failed.ok and failed.critical and "not found" in failed.detail and "fer_cnn.tflite" in failed.fix


def test_combined_reading_check(tmp_path: Path) -> None:
    from fercam.combined import Combiner
    from fercam.second_opinion import AlignedEmotionModel

    shipped = doctor_software.check_combined_reading()
    assert shipped.ok and "fer_mobilefacenet" in shipped.detail
    corrupt = tmp_path / "fer_combiner.json"
    corrupt.write_text('{"weights": [[1, 2]]')
    failed = doctor_software.check_combined_reading(loader=lambda: (AlignedEmotionModel(), Combiner.load(corrupt)))
    assert not failed.ok and failed.critical and "not a combiner file" in failed.detail and "models/" in failed.fix
    missing = doctor_software.check_combined_reading(loader=lambda: (AlignedEmotionModel(tmp_path / "none.onnx"), None))
    assert not missing.ok and "not found" in missing.detail
    assert doctor_software.check_combined_reading in doctor.default_checks()


def test_detector_check() -> None:
    assert doctor_software.check_detector(loader=lambda: object()).ok

    def not_written_yet() -> object:
        raise ImportError("No module named 'fercam.detection'")

    failed = doctor_software.check_detector(loader=not_written_yet)
    assert not failed.ok and "ImportError" in failed.detail and failed.fix


def test_linux_video_devices_reads_sysfs(tmp_path: Path) -> None:
    sysfs = tmp_path / "class" / "video4linux"
    sysfs.mkdir(parents=True)
    for node, parent, name in (("video0", "pci0000:00/usb1", "Integrated Camera"), ("video10", "virtual", "FER Cam")):
        real = tmp_path / "devices" / parent / "video4linux" / node
        real.mkdir(parents=True)
        (real / "name").write_text(name + "\n")
        (sysfs / node).symlink_to(real)
    found = devices.video_devices(sysfs)
    assert found == [
        VideoDevice("/dev/video0", "Integrated Camera", False),
        VideoDevice("/dev/video10", "FER Cam", True),
    ]
    check = doctor_devices.check_video_devices(facts=lambda: driver_facts(loaded=True, devices=tuple(found)))
    assert check.ok and check.detail == "/dev/video0 'Integrated Camera', /dev/video10 'FER Cam' (v4l2loopback)"
    assert devices.video_devices(tmp_path / "absent") == []


def driver_facts(**change: object) -> DriverFacts:
    """A machine where v4l2loopback is built for the running kernel and not loaded; tests/test_linux_driver.py
    drives the real fact reading with stand-in commands."""
    built = DriverFacts(
        kernel="6.1.0-58-amd64", distro="debian", confined="", modprobe_ok=True, modprobe="", dkms="", akmod=False,
        built_for=("6.1.0-58-amd64",), headers=True, secure_boot=False, loaded=False, parameters={}, devices=(),
        video_nr=10,
    )  # fmt: skip
    return dataclasses.replace(built, **change)


def test_video_devices_without_loopback_warns_with_the_drivers_diagnosis() -> None:
    check = doctor_devices.check_video_devices(facts=driver_facts)
    assert not check.ok and not check.critical and "built for 6.1.0-58-amd64 but not loaded" in check.detail
    assert (
        check.fix
        == '(1) load it: sudo modprobe v4l2loopback devices=1 video_nr=10 card_label="FER Cam" exclusive_caps=1'
    )


def test_webcam_check() -> None:
    assert doctor_devices.check_webcams(prober=lambda: ["0 (640x480)"]).detail == "opens: 0 (640x480)"
    none = doctor_devices.check_webcams(prober=list, system="Windows")
    assert not none.ok and not none.critical and "Privacy" in none.fix
    assert "; without it: a video file, a photo or a stream works as the camera" in none.line()

    def crashing() -> list[str]:
        raise RuntimeError("backend exploded")

    assert "backend exploded" in doctor_devices.check_webcams(prober=crashing).detail


class FakeCapture:
    """cv2.VideoCapture stand-in: index 1 delivers a frame, index 2 hangs for good, the rest do not open."""

    def __init__(self, index: int) -> None:
        self.index = index
        if index == 2:
            threading.Event().wait()  # a driver that never answers

    def isOpened(self) -> bool:  # noqa: N802 (OpenCV's name)
        return self.index == 1

    def read(self) -> tuple[bool, np.ndarray]:
        return True, np.zeros((480, 640, 3), np.uint8)

    def release(self) -> None:
        pass


def test_probe_webcams_skips_a_hung_camera(monkeypatch: pytest.MonkeyPatch) -> None:
    import cv2

    monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    monkeypatch.setattr(devices.platform, "system", lambda: "Windows")
    assert devices.probe_webcams(range(4), timeout_s=0.2) == {1: "640x480"}  # returned: the hung one was skipped


def test_virtual_camera_created_and_closed(recording_backend) -> None:
    check = doctor_devices.check_virtual_camera("fercam-test")  # the real pyvirtualcam.Camera, into conftest's backend
    (camera,) = recording_backend.instances
    assert check.ok and check.detail == f"{camera.device()} via fercam-test"
    assert (camera.width, camera.height, camera.fps) == (1280, 720, 30) and camera.closed


def no_driver(**_kwargs: object) -> object:
    raise RuntimeError("'v4l2loopback' backend: No v4l2 loopback device found\nsecond line")


@pytest.mark.parametrize(("system", "fix"), [("Windows", "install.ps1"), ("Darwin", "OBS Studio 30+")])
def test_virtual_camera_failure_names_the_fix(system: str, fix: str) -> None:
    check = doctor_devices.check_virtual_camera(factory=no_driver, system=system)
    assert not check.ok and not check.critical and fix in check.fix
    assert "No v4l2 loopback device found; second line" in check.detail
    assert "without it: the FER Cam window and its OBS overlay show the annotated video" in check.line()


def test_virtual_camera_tries_the_devices_the_sink_tries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The "FER Cam" loopback the sink would send to, not whichever loopback pyvirtualcam finds first."""
    from fercam import sinks

    found = [VideoDevice("/dev/video4", "Dummy video device", True), VideoDevice("/dev/video5", "FER Cam", True)]
    monkeypatch.setattr(sinks, "video_devices", lambda: found)
    monkeypatch.setattr(sinks.sys, "platform", "linux")
    tried = []

    def busy(**kwargs: object) -> object:
        tried.append((kwargs["backend"], kwargs["device"]))
        raise RuntimeError("device busy")

    ready = Diagnosis("ready", "loaded with /dev/video5", ())
    check = doctor_devices.check_virtual_camera(factory=busy, system="Linux", diagnose=lambda: ready)
    assert tried == sinks.camera_candidates(None) == [("v4l2loopback", "/dev/video5")]
    assert "cannot be created: v4l2loopback: device busy" in check.detail and not check.ok


def test_linux_virtual_camera_leaves_the_drivers_diagnosis_to_the_video_devices_line() -> None:
    container = Diagnosis("container", "this is a container", ("install the driver on the host",))
    check = doctor_devices.check_virtual_camera(factory=no_driver, system="Linux", diagnose=lambda: container)
    assert not check.ok and "video devices above" in check.detail and not check.fix
    assert "modprobe" not in check.line() and "install the driver" not in check.line()
    ready = Diagnosis("ready", "loaded with /dev/video10", ())
    busy = doctor_devices.check_virtual_camera(factory=no_driver, system="Linux", diagnose=lambda: ready)
    assert "No v4l2 loopback device found" in busy.detail and "usermod -aG video" in busy.fix


def test_microphone_check_names_portaudio_or_the_device() -> None:
    def no_portaudio() -> str:
        raise OSError("PortAudio library not found")

    def no_device() -> str:
        raise ValueError("No input device matching")

    def no_package() -> str:
        raise ImportError("No module named 'sounddevice'")

    assert doctor_devices.check_microphone(query=lambda: "USB mic").line() == (
        "[ok]   microphone: PortAudio loads; default input: USB mic"
    )
    library = doctor_devices.check_microphone(query=no_portaudio, system="Linux")
    assert "PortAudio library does not load" in library.detail and "apt install libportaudio2" in library.fix
    assert not library.critical and "everything but the live voice badge works" in library.line()
    device = doctor_devices.check_microphone(query=no_device, system="Windows")
    assert "no input device" in device.detail and "Privacy" in device.fix and "libportaudio2" not in device.fix
    assert 'pip install "sounddevice"' in doctor_devices.check_microphone(query=no_package).fix
    assert doctor_devices.check_microphone in doctor.default_checks()


def test_linux_virtual_camera_fix_comes_from_the_diagnosis(monkeypatch: pytest.MonkeyPatch) -> None:
    refused = Diagnosis("secure-boot", "Secure Boot refused it", ("sudo mokutil --import /var/lib/dkms/mok.pub",))
    monkeypatch.setattr(linux_driver, "diagnose", lambda: refused)
    assert doctor_devices.linux_driver_fix() == "(1) sudo mokutil --import /var/lib/dkms/mok.pub"
    monkeypatch.setattr(linux_driver, "diagnose", lambda: Diagnosis("ready", "loaded with /dev/video10", ()))
    ready = doctor_devices.linux_driver_fix()
    assert "loaded with /dev/video10" in ready and "usermod -aG video" in ready and "install.sh" not in ready


def test_display_check() -> None:
    assert doctor_devices.check_display(env={"WAYLAND_DISPLAY": "wayland-0"}, system="Linux").ok
    assert doctor_devices.check_display(env={}, system="Windows").ok
    headless = doctor_devices.check_display(env={}, system="Linux")
    assert not headless.ok and not headless.critical and "desktop session" in headless.fix
    assert "without it: `fercam window`" in headless.line()


def test_tray_check_says_which_backend_and_what_it_gives() -> None:
    xorg = doctor_devices.check_tray(env={"PYSTRAY_BACKEND": "xorg"}, system="Linux")
    assert not xorg.ok and not xorg.critical and "a click on the icon opens the FER Cam window" in xorg.detail
    assert "gir1.2-ayatanaappindicator3-0.1" in xorg.fix and xorg.line().startswith("[warn]")
    assert not doctor_devices.check_tray(env={"PYSTRAY_BACKEND": "qt"}, system="Linux").ok
    everything = doctor_devices.check_tray(
        env={}, system="Linux", has_module=lambda _m: True, has_typelib=lambda *_a: True
    )
    assert everything.ok and "appindicator backend: a full menu" in everything.detail
    gtk_only = doctor_devices.check_tray(
        env={}, system="Linux", has_module=lambda _m: True, has_typelib=lambda name, _v: name == "Gtk"
    )
    assert gtk_only.ok and "gtk backend" in gtk_only.detail
    plain_pip = doctor_devices.check_tray(env={}, system="Linux", has_module=lambda name: name == "Xlib")
    assert not plain_pip.ok and "xorg backend: no menu" in plain_pip.detail
    bare = doctor_devices.check_tray(env={}, system="Linux", has_module=lambda _name: False)
    assert not bare.ok and not bare.critical
    assert "win32" in doctor_devices.check_tray(env={}, system="Windows").detail


def _fixed(check: Check):
    return lambda: check


def test_run_doctor_exit_codes() -> None:
    lines: list[str] = []
    fine = [_fixed(Check("a", True, "ok")), _fixed(Check("b", False, "meh", "x", critical=False))]
    assert doctor.run_doctor(out=lines.append, checks=fine) == 0
    assert lines[1].startswith("[warn]") and "can run" in lines[-1]
    lines.clear()
    assert doctor.run_doctor(out=lines.append, checks=[*fine, _fixed(Check("numpy", False, "none", "pip"))]) == 1
    assert lines[-1].startswith("FER Cam cannot run: fix numpy")
    lines.clear()
    no_webcam = Check("webcam", False, "none", "plug", critical=False, without="a file works")
    assert doctor.run_doctor(out=lines.append, checks=[*fine, _fixed(no_webcam)]) == 2
    assert "cannot run" not in lines[-1] and "with a video file, a photo" in lines[-1] and "needs: webcam" in lines[-1]


def test_a_crashing_check_is_reported_not_raised() -> None:
    def check_boom() -> Check:
        raise KeyError("bug")

    lines: list[str] = []
    assert doctor.run_doctor(out=lines.append, checks=[check_boom]) == 1
    assert lines[0].startswith("[FAIL] check_boom: the check itself crashed")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or bool(glob.glob("/dev/video*")),
    reason="describes a headless Linux machine without webcam or v4l2loopback (like CI)",
)
def test_whole_run_here_reports_no_webcam_and_no_virtual_camera() -> None:
    lines: list[str] = []
    assert doctor.run_doctor(out=lines.append) == 2  # runs with a file or photo and the window
    webcam = next(line for line in lines if line.startswith("[warn] webcam:"))
    vcam = next(line for line in lines if line.startswith("[warn] virtual camera:"))
    devices_line = next(line for line in lines if line.startswith("[warn] video devices:"))
    assert "-> fix:" in webcam and "sudo bash installer/linux/install.sh" in devices_line
    assert "modprobe" not in vcam and "video devices above" in vcam  # one diagnosis, said once
    assert lines[0].startswith("[ok]   python:") and not any("cannot run" in line for line in lines)
