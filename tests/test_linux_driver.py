"""Why Linux has no "FER Cam" camera: the installer (--prefix) and `fercam doctor` on the same stand-in system.

Each case puts stand-in `uname`, `modprobe`, `dkms` and `mokutil` on the PATH that print what the real ones print
on such a machine, and lays out /lib/modules, /sys and /etc under a staging root. Both programs must name the
same cause and fix, and neither may recommend what the system has just shown to fail.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest

from fercam import driver_facts, linux_driver
from fercam.apps import doctor, doctor_devices

ROOT = Path(__file__).resolve().parents[1]
INSTALL = ROOT / "installer" / "linux" / "install.sh"
RUNNING, OLDER = "6.1.0-58-amd64", "6.1.0-57-amd64"
NOT_FOUND = f"modprobe: FATAL: Module v4l2loopback not found in directory /lib/modules/{RUNNING}"
KEY_REJECTED = "modprobe: ERROR: could not insert 'v4l2loopback': Key was rejected by service"
DRY_RUN_OK = f"insmod /lib/modules/{RUNNING}/updates/dkms/v4l2loopback.ko"

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("bash") is None, reason="the Linux installer needs bash"
)


@dataclass
class System:
    """One machine as the commands and files describe it."""

    modprobe_dry: tuple[int, str]  # `modprobe --dry-run --verbose v4l2loopback`
    modprobe_load: tuple[int, str]  # a real `modprobe v4l2loopback ...`
    dkms: str = ""
    secure_boot: str = "SecureBoot disabled"
    distro: str = "ID=debian"
    files: tuple[str, ...] = ()  # created empty under the root
    loopbacks: dict[str, str] = field(default_factory=dict)  # video node -> label, under /sys/devices/virtual
    parameters: dict[str, str] = field(default_factory=dict)  # /sys/module/v4l2loopback/parameters


def stand_in(folder: Path, name: str, body: str) -> None:
    script = folder / name
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)


def prints(status: int, text: str) -> str:
    return f"printf '%s\\n' {shlex.quote(text)} >&2; exit {status}\n" if text else f"exit {status}\n"


def build(system: System, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The staging root and an environment whose PATH starts with the stand-ins."""
    root, bin_dir = tmp_path / "root", tmp_path / "bin"
    bin_dir.mkdir()
    stand_in(bin_dir, "uname", f'[ "$1" = -r ] && echo {RUNNING} && exit 0\nPATH=/usr/bin:/bin exec uname "$@"\n')
    stand_in(
        bin_dir,
        "modprobe",
        'case " $* " in *" --dry-run "*|*" -n "*)\n'
        + prints(*system.modprobe_dry)
        + ";;\nesac\n"
        + prints(*system.modprobe_load),
    )
    stand_in(bin_dir, "dkms", f"printf '%s\\n' {shlex.quote(system.dkms)}\n" if system.dkms else "exit 0\n")
    stand_in(bin_dir, "mokutil", f"echo {shlex.quote(system.secure_boot)}\n")
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(system.distro + "\n")
    for name in system.files:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).touch()
    for node, label in system.loopbacks.items():
        real = root / "sys/devices/virtual/video4linux" / node
        real.mkdir(parents=True)
        (real / "name").write_text(label + "\n")
        (root / "sys/class/video4linux").mkdir(parents=True, exist_ok=True)
        (root / "sys/class/video4linux" / node).symlink_to(real)
    if system.parameters:
        (root / "sys/module/v4l2loopback/parameters").mkdir(parents=True)
        for name, value in system.parameters.items():
            (root / "sys/module/v4l2loopback/parameters" / name).write_text(value + "\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SUDO_"))}
    env |= {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "HOME": str(tmp_path / "home")}
    return root, env


def installer_says(root: Path, env: dict[str, str]) -> str:
    result = subprocess.run(
        ["bash", str(INSTALL), "--prefix", str(root), "--no-app", "--python", sys.executable],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "modprobe -r" not in result.stdout  # never takes another program's camera away
    return result.stderr


def doctor_says(root: Path, env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("PATH", env["PATH"])
    lines: list[str] = []
    doctor.run_doctor(
        out=lines.append,
        checks=[partial(doctor_devices.check_video_devices, facts=partial(driver_facts.read_facts, root))],
    )
    return lines[0]


def both_say(system: System, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    root, env = build(system, tmp_path)
    return installer_says(root, env), doctor_says(root, env, monkeypatch)


OTHER_KERNEL = System(
    modprobe_dry=(1, NOT_FOUND),
    modprobe_load=(1, NOT_FOUND),
    dkms=f"v4l2loopback/0.12.7, {OLDER}, x86_64: installed",
    secure_boot="SecureBoot enabled",  # on, yet not the cause: the module is not there to refuse
    files=(
        f"lib/modules/{RUNNING}/kernel/drivers/media/usb/uvc/uvcvideo.ko",
        f"lib/modules/{OLDER}/updates/dkms/v4l2loopback.ko",
    ),
)


def test_module_built_for_another_kernel_names_the_headers_and_the_rebuild(tmp_path, monkeypatch) -> None:
    for said in both_say(OTHER_KERNEL, tmp_path, monkeypatch):
        assert f"not built for the running kernel {RUNNING}" in said and f"built for kernel {OLDER}" in said
        assert f"sudo apt-get install linux-headers-{RUNNING}" in said
        assert f"sudo dkms autoinstall -k {RUNNING}" in said and f"reboot into kernel {OLDER}" in said
        assert "Secure Boot" not in said and "mokutil" not in said and "install.sh" not in said


@pytest.mark.parametrize(
    ("distro", "headers"),
    [
        ("ID=fedora", f"sudo dnf install kernel-devel-{RUNNING}"),
        ('ID="manjaro"\nID_LIKE=arch', "sudo pacman -S linux-headers"),
    ],
)
def test_the_headers_package_follows_the_distribution(distro: str, headers: str, tmp_path, monkeypatch) -> None:
    system = System(**{**OTHER_KERNEL.__dict__, "distro": distro})
    root, env = build(system, tmp_path)
    assert headers in installer_says(root, env) and headers in doctor_says(root, env, monkeypatch)


def test_headers_installed_but_the_build_failed_is_not_told_to_install_them(tmp_path, monkeypatch) -> None:
    system = System(
        **{**OTHER_KERNEL.__dict__, "files": (*OTHER_KERNEL.files, f"lib/modules/{RUNNING}/build/Makefile")}
    )
    for said in both_say(system, tmp_path, monkeypatch):
        assert "linux-headers" not in said and "the build itself failed" in said
        assert f"sudo dkms autoinstall -k {RUNNING}" in said and "make.log" in said


SECURE_BOOT = System(
    modprobe_dry=(0, DRY_RUN_OK),
    modprobe_load=(1, KEY_REJECTED),
    dkms=f"v4l2loopback/0.12.7, {RUNNING}, x86_64: installed",
    secure_boot="SecureBoot enabled",
    files=(f"lib/modules/{RUNNING}/updates/dkms/v4l2loopback.ko", f"lib/modules/{RUNNING}/build/Makefile"),
)


def test_secure_boot_refusal_gives_the_mok_steps(tmp_path, monkeypatch) -> None:
    for said in both_say(SECURE_BOOT, tmp_path, monkeypatch):
        assert "Secure Boot" in said and "sudo mokutil --import /var/lib/dkms/mok.pub" in said
        assert '"Enroll MOK"' in said and "linux-headers" not in said and "dkms autoinstall" not in said


def test_the_installers_own_modprobe_message_is_the_evidence(tmp_path) -> None:
    """What a real install does after its modprobe failed: hand modprobe's words to the same table."""
    root, env = build(SECURE_BOOT, tmp_path)
    script = f'source "{INSTALL}" && PREFIX="{root}" VIDEO_NR=10 PYTHON="{sys.executable}" && explain_driver 1 "$1"'
    for message, mok in ((KEY_REJECTED, True), (NOT_FOUND, False)):
        said = subprocess.run(
            ["bash", "-c", script, "bash", message], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stderr
        assert ("Secure Boot refused the unsigned module" in said and "Key was rejected by service" in said) is mok
        assert ("mokutil --import" in said) is mok and ("dkms autoinstall" in said) is not mok


def test_another_programs_module_gets_a_fer_cam_device_beside_it(tmp_path, monkeypatch) -> None:
    system = System(
        modprobe_dry=(0, ""),
        modprobe_load=(0, ""),
        dkms=f"v4l2loopback/0.12.7, {RUNNING}, x86_64: installed",
        files=(f"lib/modules/{RUNNING}/updates/dkms/v4l2loopback.ko",),
        loopbacks={"video2": "OBS Virtual Camera"},
        parameters={"devices": "1", "exclusive_caps": "N,N,N,N,N,N,N,N", "video_nr": "2,-1,-1,-1,-1,-1,-1,-1"},
    )
    for said in both_say(system, tmp_path, monkeypatch):
        assert (
            "loaded already, by another program" in said and "/dev/video2 'OBS Virtual Camera' exclusive_caps=0" in said
        )
        assert 'sudo v4l2loopback-ctl add -n "FER Cam" -x 1 /dev/video10' in said
        assert 'devices=2 video_nr=2,10 card_label="OBS Virtual Camera","FER Cam" exclusive_caps=0,1' in said
        assert "Secure Boot" not in said and "linux-headers" not in said


def test_a_container_says_so_and_that_the_window_still_works(tmp_path, monkeypatch) -> None:
    system = System(modprobe_dry=(1, NOT_FOUND), modprobe_load=(1, NOT_FOUND), files=(".dockerenv",))
    for said in both_say(system, tmp_path, monkeypatch):
        assert "cannot load kernel modules" in said and "container" in said
        assert "FER Cam window" in said and "OBS overlay" in said
        assert "linux-headers" not in said and "Secure Boot" not in said and "dkms" not in said


def test_ready_camera_is_ok_for_the_doctor_and_the_installer_keeps_it(tmp_path, monkeypatch) -> None:
    system = System(
        modprobe_dry=(0, ""),
        modprobe_load=(0, ""),
        loopbacks={"video10": "FER Cam"},
        parameters={"devices": "1", "exclusive_caps": "Y", "video_nr": "10"},
    )
    root, env = build(system, tmp_path)
    assert doctor_says(root, env, monkeypatch) == "[ok]   video devices: /dev/video10 'FER Cam' (v4l2loopback)"
    assert installer_says(root, env) == ""


def test_every_cause_of_the_table_is_reachable() -> None:
    """The table's rows, from facts alone: each key once, and only the camera being there has no fix."""
    base = driver_facts.DriverFacts(
        kernel=RUNNING, distro="debian", confined="", modprobe_ok=False, modprobe="", dkms="", akmod=False,
        built_for=(), headers=False, secure_boot=False, loaded=False, parameters={}, devices=(), video_nr=10,
    )  # fmt: skip
    cases = {
        "not-loaded": {"modprobe_ok": True},
        "not-installed": {"modprobe": NOT_FOUND},
        "other-kernel": {"modprobe": NOT_FOUND, "akmod": True, "distro": "fedora"},
        "secure-boot": {
            "modprobe": "modprobe: ERROR: could not insert 'v4l2loopback': Operation not permitted",
            "secure_boot": True,
        },
        "unknown": {"modprobe": "modprobe: ERROR: could not insert 'v4l2loopback': Exec format error"},
        "no-modules": {"confined": "module loading is switched off (kernel.modules_disabled=1)"},
        "other-options": {"loaded": True},
    }
    for key, change in cases.items():
        verdict = linux_driver.classify(driver_facts.DriverFacts(**{**base.__dict__, **change}))
        assert verdict.key == key and verdict.steps and verdict.cause, (key, verdict)
    container = {"confined": "this is a container", "secure_boot": True}
    refused = {"modprobe": "modprobe: ERROR: could not insert 'v4l2loopback': Operation not permitted", **container}
    assert linux_driver.classify(driver_facts.DriverFacts(**{**base.__dict__, **refused})).key == "no-modules"
    rejected = {**refused, "modprobe": KEY_REJECTED}  # only the signature check says this, container or not
    assert linux_driver.classify(driver_facts.DriverFacts(**{**base.__dict__, **rejected})).key == "secure-boot"
    akmods = linux_driver.classify(driver_facts.DriverFacts(**{**base.__dict__, **cases["other-kernel"]}))
    assert f"sudo akmods --force --kernels {RUNNING}" in akmods.fix() and "kernel-devel" in akmods.fix()
    assert {row.key for row in linux_driver.CAUSES} == {"ready", "unknown", *cases}


def test_every_missing_camera_message_gives_the_diagnosis_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """`fercam devices` and a failed virtual-camera sink say the same fix as the doctor, not "run install.sh"."""
    from fercam.devices import driver_fix

    refused = linux_driver.Diagnosis(
        "secure-boot", "Secure Boot refused it", ("sudo mokutil --import /var/lib/dkms/mok.pub",)
    )
    monkeypatch.setattr(linux_driver, "diagnose", lambda: refused)
    assert driver_fix("Linux") == "(1) sudo mokutil --import /var/lib/dkms/mok.pub"
    assert "OBS Studio" in driver_fix("Darwin")
