"""What the system says about v4l2loopback, gathered once: the facts `fercam.linux_driver` diagnoses.

`read_facts` asks the running kernel (uname), modprobe (the load already tried, or a dry run), DKMS, akmods,
mokutil (Secure Boot), the loaded module's options and the video devices (`video_devices`, which `fercam.devices`
hands on to the sinks and the CLI), and returns one `DriverFacts`.
Only the standard library: the installer runs it with the system's Python before FER Cam is installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

CAMERA_NAME = "FER Cam"  # the virtual camera's label, what video-call apps list
SYSFS_VIDEO = Path("/sys/class/video4linux")
MODULE = "v4l2loopback"
FIRST_VIDEO_NR = 10
# Debian keeps modprobe, dkms and friends out of a user's PATH.
SYSTEM_BIN = "/usr/sbin:/sbin:/usr/bin:/bin"
CONTAINER_MARKERS = (".dockerenv", "run/.containerenv")
HEADERS = {
    "debian": "sudo apt-get install linux-headers-{kernel}",
    "ubuntu": "sudo apt-get install linux-headers-{kernel}",
    "fedora": "sudo dnf install kernel-devel-{kernel}",
    "arch": "sudo pacman -S {arch_headers}",
}
SECURE_BOOT_REFUSALS = ("Key was rejected by service", "Required key not available")


@dataclass(frozen=True)
class VideoDevice:
    node: str  # /dev/videoN
    name: str  # the driver's label, "FER Cam" for ours
    loopback: bool  # a v4l2loopback device (a virtual camera), not a webcam


def video_devices(sysfs: Path = SYSFS_VIDEO) -> list[VideoDevice]:
    """Linux: every /dev/video* device with its label, in numeric order."""
    if not sysfs.is_dir():
        return []
    devices = []
    for entry in sorted(sysfs.iterdir(), key=lambda p: (len(p.name), p.name)):
        name_file = entry / "name"
        name = name_file.read_text(errors="replace").strip() if name_file.is_file() else "?"
        devices.append(VideoDevice(f"/dev/{entry.name}", name, "/virtual/" in str(entry.resolve())))
    return devices


@dataclass(frozen=True)
class DriverFacts:
    """What the system says about v4l2loopback, as `read_facts` found it."""

    kernel: str  # the running kernel (uname -r)
    distro: str  # "debian", "ubuntu", "fedora", "arch" or "" (from os-release)
    confined: str  # why no module can be loaded here at all ("" when modules can be loaded)
    modprobe_ok: bool  # modprobe succeeded (a dry run: the module is there for the running kernel)
    modprobe: str  # what modprobe said
    dkms: str  # `dkms status` for v4l2loopback ("" when DKMS does not know it)
    akmod: bool  # Fedora's akmod source is installed (akmods builds the module at boot)
    built_for: tuple[str, ...]  # the kernels a v4l2loopback module is built (or installed) for
    headers: bool  # the running kernel's headers are installed (/lib/modules/<kernel>/build)
    secure_boot: bool  # mokutil --sb-state says enabled
    loaded: bool  # /sys/module/v4l2loopback exists
    parameters: dict[str, str]  # the loaded module's options (/sys/module/v4l2loopback/parameters)
    devices: tuple[VideoDevice, ...]  # every /dev/video* with its label
    video_nr: int  # the number to give the FER Cam device

    @property
    def fercam_device(self) -> str:
        return next((d.node for d in self.devices if d.loopback and d.name == CAMERA_NAME), "")

    @property
    def refused_by_secure_boot(self) -> bool:
        """The kernel's signature check said no; or, where modules can load, Secure Boot is on and the module is
        built but refused ("Operation not permitted") or, in a dry run, not loaded."""
        said = any(text in self.modprobe for text in SECURE_BOOT_REFUSALS)
        inferred = self.secure_boot and not self.confined
        return said or inferred and (self.modprobe_ok or "Operation not permitted" in self.modprobe)

    @property
    def missing_for_kernel(self) -> bool:
        """The module exists somewhere (DKMS, akmods, another kernel) but not for the running kernel."""
        not_found = "not found in directory" in self.modprobe
        registered = bool(self.dkms or self.akmod or self.built_for)
        return registered and (not_found or self.kernel not in self.built_for and not self.modprobe_ok)


def _run(*command: str) -> tuple[int, str]:
    """(exit status, stdout and stderr); 127 when the program is not installed."""
    path = os.environ.get("PATH", "") + os.pathsep + SYSTEM_BIN
    program = shutil.which(command[0], path=path)
    if program is None:
        return 127, ""
    try:
        done = subprocess.run([program, *command[1:]], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return ""


def _distro(root: Path) -> str:
    text = _read(root / "etc/os-release") or _read(root / "usr/lib/os-release")
    fields = dict(re.findall(r'^(ID|ID_LIKE)="?([^"\n]*)"?$', text, re.MULTILINE))
    names = [fields.get("ID", ""), *fields.get("ID_LIKE", "").split()]
    return next((name for name in names if name in HEADERS), "")


def _confined(root: Path, kernel: str) -> str:
    if _read(root / "proc/sys/kernel/modules_disabled") == "1":
        return "module loading is switched off (kernel.modules_disabled=1)"
    if any((root / marker).exists() for marker in CONTAINER_MARKERS):
        return "this is a container, which shares its host's kernel"
    if "microsoft" in kernel.lower():
        return "this is WSL, whose kernel has no modules of its own"
    if not (root / "lib/modules" / kernel).is_dir():
        return f"the running kernel {kernel} has no /lib/modules/{kernel} (a container, or no loadable modules)"
    return ""


def _built_for(root: Path, dkms: str) -> tuple[str, ...]:
    """Kernels with the module: DKMS's "installed" lines and the .ko files under /lib/modules/*/{updates,extra}."""
    kernels = set(re.findall(rf"^{MODULE}[/,]\s*[^,:]+,\s*([^,:]+),\s*[^,:]+:\s*installed", dkms, re.MULTILINE))
    for folder in ("updates", "extra"):
        kernels.update(
            ko.relative_to(root / "lib/modules").parts[0] for ko in root.glob(f"lib/modules/*/{folder}/**/{MODULE}.ko*")
        )
    return tuple(sorted(kernels))


def _free_video_nr(root: Path) -> int:
    """The first number from 10 without a /dev/videoN, like the installer's default."""
    return next((n for n in range(FIRST_VIDEO_NR, 64) if not (root / f"dev/video{n}").exists()), 64)


def read_facts(
    root: Path = Path("/"), modprobe: tuple[int, str] | None = None, video_nr: int | None = None
) -> DriverFacts:
    """What the system says. `modprobe` is (status, output) of a load already tried; without it, a dry run.

    `root` is where the files are read (/sys, /lib/modules, /etc): the installer's --prefix and the tests'
    staging folder; the commands (uname, modprobe, dkms, mokutil) are found on the PATH."""
    status, kernel = _run("uname", "-r")
    kernel = kernel if status == 0 and kernel else os.uname().release
    status, output = modprobe if modprobe is not None else _run("modprobe", "--dry-run", "--verbose", MODULE)
    dkms_status, dkms = _run("dkms", "status", "-m", MODULE)
    dkms = "\n".join(line for line in dkms.splitlines() if line.startswith(MODULE)) if dkms_status == 0 else ""
    sb_status, sb_state = _run("mokutil", "--sb-state")
    parameters = root / "sys/module" / MODULE / "parameters"
    return DriverFacts(
        kernel=kernel,
        distro=_distro(root),
        confined=_confined(root, kernel),
        modprobe_ok=status == 0,
        modprobe=output,
        dkms=dkms,
        akmod=any(root.glob(f"usr/src/akmods/{MODULE}-kmod*")),
        built_for=_built_for(root, dkms),
        headers=(root / "lib/modules" / kernel / "build").exists(),
        secure_boot=sb_status == 0 and "SecureBoot enabled" in sb_state,
        loaded=(root / "sys/module" / MODULE).is_dir(),
        parameters={p.name: _read(p) for p in sorted(parameters.iterdir())} if parameters.is_dir() else {},
        devices=tuple(video_devices(root / "sys/class/video4linux")),
        video_nr=_free_video_nr(root) if video_nr is None else video_nr,
    )
