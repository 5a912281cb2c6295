"""Why Linux has no "FER Cam" camera, and the fix that fits: one diagnosis for the installer and `fercam doctor`.

`fercam.driver_facts.read_facts` gathers what the system says (the running kernel, modprobe's message, DKMS,
Secure Boot, the loaded module's devices); `CAUSES` is the one ordered table of evidence -> cause -> fix. The
installer runs this module after its own modprobe failed
(`python3 -m fercam.linux_driver --modprobe-status N --modprobe-output TEXT`); the doctor calls `diagnose()`,
which asks modprobe for a dry run instead (it loads nothing and needs no root).
Only the standard library: the installer runs it with the system's Python before FER Cam is installed.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fercam.driver_facts import CAMERA_NAME, HEADERS, MODULE, DriverFacts, read_facts

MOK_KEYS = {
    "debian": "/var/lib/dkms/mok.pub",
    "ubuntu": "/var/lib/shim-signed/mok/MOK.der",
    "arch": "/var/lib/dkms/mok.pub",
    "fedora": "/etc/pki/akmods/certs/public_key.der",
}


@dataclass(frozen=True)
class Diagnosis:
    key: str  # the row of CAUSES that matched
    cause: str
    steps: tuple[str, ...]  # the fix, in order; empty when the camera is there

    @property
    def ready(self) -> bool:
        return not self.steps

    def text(self) -> str:
        """Several lines, for the installer's terminal."""
        lines = [f'The "{CAMERA_NAME}" camera: {self.cause}']
        if self.steps:
            lines += ["Fix:", *(f"  {n}. {step}" for n, step in enumerate(self.steps, 1))]
        return "\n".join(lines)

    def fix(self) -> str:
        """One line, for the doctor."""
        return " ".join(f"({n}) {step}" for n, step in enumerate(self.steps, 1))


# -- the fixes, each from the facts ---------------------------------------------------------------------------------


def _load(f: DriverFacts) -> str:
    return f'sudo modprobe {MODULE} devices=1 video_nr={f.video_nr} card_label="{CAMERA_NAME}" exclusive_caps=1'


def _window_still_works() -> str:
    return (
        'the FER Cam window (`fercam window`) and its OBS overlay (the window\'s "Copy overlay link") still work '
        "here, without the camera"
    )


def _headers(f: DriverFacts) -> str:
    flavour = re.search(r"-(lts|zen|hardened|rt)$", f.kernel)
    arch_headers = f"linux-{flavour.group(1)}-headers" if flavour else "linux-headers"
    command = HEADERS.get(f.distro, "install the kernel headers of {kernel} with your package manager")
    return command.format(kernel=f.kernel, arch_headers=arch_headers)


def _rebuild(f: DriverFacts) -> str:
    if f.akmod and not f.dkms:
        return f"sudo akmods --force --kernels {f.kernel}"
    return f"sudo dkms autoinstall -k {f.kernel}"


def _loopbacks(f: DriverFacts) -> list[tuple[int, str, str]]:
    """The loaded module's devices as (number, label, exclusive_caps 0/1); its options are listed in its own order."""
    labels = {int(d.node[len("/dev/video") :]): d.name for d in f.devices if d.loopback}
    asked = [int(n) for n in f.parameters.get("video_nr", "").split(",") if re.fullmatch(r"-?\d+", n)]
    caps = f.parameters.get("exclusive_caps", "").split(",")
    found = []
    for rank, number in enumerate(sorted(labels)):
        index = asked.index(number) if number in asked else rank
        found.append((number, labels[number], "1" if index < len(caps) and caps[index] == "Y" else "0"))
    return found


def _listed(f: DriverFacts) -> str:
    return ", ".join(f"/dev/video{n} {label!r} exclusive_caps={caps}" for n, label, caps in _loopbacks(f)) or "none"


def _beside(f: DriverFacts) -> tuple[str, ...]:
    """Ours added to theirs: at run time when v4l2loopback can add devices, else by loading it again with both."""
    both = [*_loopbacks(f), (f.video_nr, CAMERA_NAME, "1")]
    numbers, labels, caps = (",".join(column) for column in zip(*((str(n), f'"{name}"', c) for n, name, c in both)))
    return (
        f'add a "{CAMERA_NAME}" device beside the others, which stay as they are: '
        f'sudo v4l2loopback-ctl add -n "{CAMERA_NAME}" -x 1 /dev/video{f.video_nr}  (v4l2loopback 0.13 or newer)',
        "with an older v4l2loopback, when no program has its devices open, load it again with theirs and ours: "
        f"sudo modprobe -r {MODULE} && sudo modprobe {MODULE} devices={len(both)} video_nr={numbers} "
        f"card_label={labels} exclusive_caps={caps}",
    )


def _mok(f: DriverFacts) -> tuple[str, ...]:
    key = MOK_KEYS.get(f.distro)
    imports = (
        f"sudo mokutil --import {key}"
        if key
        else f"sudo mokutil --import {MOK_KEYS['debian']}  (DKMS; Fedora akmods: {MOK_KEYS['fedora']})"
    )
    return (
        f"enrol the key the module is signed with: {imports}  (it asks for a one-time password)",
        'reboot; in the blue MOK manager screen choose "Enroll MOK", "Continue", "Yes" and type that password',
        f"after the reboot load it: {_load(f)}",
        "or, instead: switch Secure Boot off in the firmware (UEFI) settings",
    )


def _for_kernel(f: DriverFacts) -> tuple[str, ...]:
    steps = [] if f.headers else [f"install the headers of the running kernel {f.kernel}: {_headers(f)}"]
    if f.dkms or f.akmod:
        build = _rebuild(f)
        why = f" (its log: /var/lib/dkms/{MODULE}/*/build/make.log)" if f.headers and f.dkms else ""
        steps.append(f"build the module for {f.kernel}: {build}{why}")
    else:
        steps.append(f"install {MODULE} for {f.kernel}: sudo bash installer/linux/install.sh --no-app")
    steps.append(f"load it: {_load(f)}")
    others = [k for k in f.built_for if k != f.kernel]
    if others:
        steps.append(f"or, instead: reboot into kernel {others[-1]}, the one {MODULE} is built for")
    return tuple(steps)


def _built_for_text(f: DriverFacts) -> str:
    others = [k for k in f.built_for if k != f.kernel]
    if others:
        return f"it is built for kernel {', '.join(others)}"
    return "DKMS has not built it for any kernel" if f.dkms or f.akmod else "it is built for no kernel"


def _headers_text(f: DriverFacts) -> str:
    if f.headers:
        return f"the headers of {f.kernel} are installed, so the build itself failed"
    return f"the headers of {f.kernel} are not installed, so it could not be built"


def _said(f: DriverFacts) -> str:
    """modprobe's last line, as it printed it."""
    lines = [line.strip() for line in f.modprobe.splitlines() if line.strip()]
    return f'modprobe said "{lines[-1]}"' if lines else "modprobe said nothing"


# -- the table: evidence -> cause -> fix, first match wins ----------------------------------------------------------


@dataclass(frozen=True)
class Cause:
    key: str
    evidence: Callable[[DriverFacts], bool]
    cause: Callable[[DriverFacts], str]
    fix: Callable[[DriverFacts], tuple[str, ...]]


CAUSES: tuple[Cause, ...] = (
    Cause(
        "ready",
        lambda f: bool(f.fercam_device),
        lambda f: f"{MODULE} is loaded with the device {f.fercam_device}",
        lambda f: (),
    ),
    Cause(
        "other-options",
        lambda f: f.loaded,
        lambda f: (
            f'{MODULE} is loaded already, by another program, without a "{CAMERA_NAME}" device '
            f"(its devices: {_listed(f)})"
        ),
        _beside,
    ),
    Cause(
        "secure-boot",
        lambda f: f.refused_by_secure_boot,
        lambda f: (
            f"Secure Boot refused the unsigned module ({_said(f)})"
            if not f.modprobe_ok
            else f"{MODULE} is built for {f.kernel} but not loaded, and Secure Boot is enabled: "
            "the kernel loads only modules signed with a key you enrolled"
        ),
        _mok,
    ),
    Cause(
        "no-modules",
        lambda f: bool(f.confined),
        lambda f: (
            f"this system cannot load kernel modules: {f.confined}. The virtual camera needs the "
            f"{MODULE} driver in the kernel, so it cannot exist here"
        ),
        lambda f: (
            _window_still_works(),
            "for the camera, install the driver where the kernel runs (the host): sudo bash "
            "installer/linux/install.sh --no-app",
        ),
    ),
    Cause(
        "other-kernel",
        lambda f: f.missing_for_kernel,
        lambda f: (
            f"{MODULE} is not built for the running kernel {f.kernel}: {_built_for_text(f)}, and "
            f"{_headers_text(f)} ({_said(f)})"
        ),
        _for_kernel,
    ),
    Cause(
        "not-installed",
        lambda f: not f.modprobe_ok and "not found" in f.modprobe,
        lambda f: f"{MODULE} is not installed ({_said(f)})",
        lambda f: (f'install it and load it as "{CAMERA_NAME}": sudo bash installer/linux/install.sh',),
    ),
    Cause(
        "not-loaded",
        lambda f: f.modprobe_ok,
        lambda f: f"{MODULE} is built for {f.kernel} but not loaded",
        lambda f: (f"load it: {_load(f)}",),
    ),
    Cause(
        "unknown",
        lambda f: True,
        lambda f: f"{MODULE} did not load ({_said(f)})",
        lambda f: (
            'look up that message in installer/README.md ("When the camera does not appear") and in '
            f"`sudo dmesg | grep -i {MODULE}`",
        ),
    ),
)


def classify(facts: DriverFacts) -> Diagnosis:
    row = next(row for row in CAUSES if row.evidence(facts))
    return Diagnosis(row.key, row.cause(facts), row.fix(facts))


def diagnose(root: Path = Path("/"), modprobe: tuple[int, str] | None = None, video_nr: int | None = None) -> Diagnosis:
    return classify(read_facts(root, modprobe, video_nr))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("/"), help="where /sys, /lib/modules and /etc are read")
    parser.add_argument("--modprobe-status", type=int, help="the exit status of the modprobe the installer ran")
    parser.add_argument("--modprobe-output", default="", help="what that modprobe printed")
    parser.add_argument("--video-nr", type=int, help="the device number the installer chose")
    args = parser.parse_args(argv)
    tried = None if args.modprobe_status is None else (args.modprobe_status, args.modprobe_output)
    print(diagnose(args.root, tried, args.video_nr).text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
