"""The installers: the Linux scripts in --dry-run and --prefix mode (no root, no driver), and the static checks."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from glob import glob
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINUX = ROOT / "installer" / "linux"
WINDOWS = ROOT / "installer" / "windows"
MODPROBE_CONF = "etc/modprobe.d/fercam-v4l2loopback.conf"
LOAD_CONF = "etc/modules-load.d/fercam-v4l2loopback.conf"

needs_bash = pytest.mark.skipif(sys.platform == "win32" or shutil.which("bash") is None, reason="needs bash")


def run(script: str, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
    """Run a Linux installer script with HOME pointing into the test's folder and no XDG overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("XDG_", "SUDO_"))}
    env["HOME"] = str(home)
    return subprocess.run(
        ["bash", str(LINUX / script), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file() or p.is_symlink()}


@needs_bash
@pytest.mark.skipif(Path("/sys/module/v4l2loopback").exists(), reason="v4l2loopback is loaded: no modprobe to show")
def test_dry_run_prints_the_driver_setup_and_changes_nothing(tmp_path: Path) -> None:
    result = run("install.sh", "--dry-run", "--venv", "--video-nr", "10", home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    modprobe = next(line for line in result.stdout.splitlines() if "modprobe v4l2loopback" in line)
    assert 'card_label="FER Cam"' in modprobe and "exclusive_caps=1" in modprobe and "devices=1" in modprobe
    assert f"would write /{MODPROBE_CONF}:" in result.stdout
    assert f"would write /{LOAD_CONF}:" in result.stdout
    assert 'options v4l2loopback devices=1 video_nr=10 card_label="FER Cam" exclusive_caps=1' in result.stdout
    assert "pip install" in result.stdout and "fercam.desktop" in result.stdout
    assert not list(tmp_path.iterdir())


def expected_install(home: Path, *, autostart: bool) -> set[str]:
    user = str(home).lstrip("/")
    files = {MODPROBE_CONF, LOAD_CONF, f"{user}/.local/share/applications/fercam.desktop"}
    files.add(f"{user}/.local/share/fercam/installed-files.txt")
    return files | ({f"{user}/.config/autostart/fercam.desktop"} if autostart else set())


@needs_bash
def test_prefix_install_writes_exactly_the_expected_files(tmp_path: Path) -> None:
    home, prefix = tmp_path / "home", tmp_path / "root"
    result = run("install.sh", "--prefix", str(prefix), "--venv", "--autostart", home=home)
    assert result.returncode == 0, result.stderr
    assert "skipped (--prefix): modprobe v4l2loopback" in result.stdout
    assert files_under(tmp_path) == {f"root/{name}" for name in expected_install(home, autostart=True)}
    assert not home.exists()
    options = (prefix / MODPROBE_CONF).read_text().splitlines()
    assert options[-1] == 'options v4l2loopback devices=1 video_nr=10 card_label="FER Cam" exclusive_caps=1'
    assert [line for line in (prefix / LOAD_CONF).read_text().splitlines() if not line.startswith("#")] == [
        "v4l2loopback"
    ]
    entry = (prefix / str(home).lstrip("/") / ".local/share/applications/fercam.desktop").read_text()
    assert "[Desktop Entry]" in entry and "Name=FER Cam" in entry
    assert f"Exec={home}/.local/share/fercam/venv/bin/fercam\n" in entry


@needs_bash
def test_another_programs_v4l2loopback_options_are_left_alone(tmp_path: Path) -> None:
    """OBS wrote its options: ours would be merged with them at the next boot and change its camera."""
    home, prefix = tmp_path / "home", tmp_path / "root"
    theirs = prefix / "etc/modprobe.d/v4l2loopback.conf"
    theirs.parent.mkdir(parents=True)
    theirs.write_text('options v4l2loopback devices=1 video_nr=2 card_label="OBS Virtual Camera" exclusive_caps=0\n')
    result = run("install.sh", "--prefix", str(prefix), "--venv", home=home)
    assert result.returncode == 0, result.stderr
    assert "/etc/modprobe.d/v4l2loopback.conf sets v4l2loopback's options already" in result.stderr
    assert 'v4l2loopback-ctl add -n "FER Cam" -x 1 /dev/video10' in result.stderr
    assert not (prefix / MODPROBE_CONF).exists() and (prefix / LOAD_CONF).is_file()
    assert theirs.read_text().startswith("options v4l2loopback devices=1 video_nr=2")
    manifest = (prefix / str(home).lstrip("/") / ".local/share/fercam/installed-files.txt").read_text()
    assert MODPROBE_CONF not in manifest and LOAD_CONF in manifest  # so uninstall.sh never touches theirs
    theirs.write_text("# options v4l2loopback devices=4\noptions snd_hda_intel power_save=1\n")  # not options of it
    (prefix / MODPROBE_CONF).parent.mkdir(parents=True, exist_ok=True)
    assert run("install.sh", "--prefix", str(prefix), "--venv", home=home).returncode == 0
    assert (prefix / MODPROBE_CONF).is_file()


@needs_bash
def test_uninstall_removes_exactly_what_was_installed(tmp_path: Path) -> None:
    home, prefix = tmp_path / "home", tmp_path / "root"
    (prefix / "etc/modprobe.d").mkdir(parents=True)
    (prefix / "etc/modprobe.d/someone-else.conf").write_text("options snd foo=1\n")
    assert run("install.sh", "--prefix", str(prefix), "--venv", "--no-driver", home=home).returncode == 0
    second = run("install.sh", "--prefix", str(prefix), "--venv", "--autostart", home=home)
    assert second.returncode == 0, second.stderr
    assert len(files_under(prefix)) == 6
    dry = run("uninstall.sh", "--prefix", str(prefix), "--dry-run", home=home)
    assert dry.returncode == 0 and len(files_under(prefix)) == 6
    result = run("uninstall.sh", "--prefix", str(prefix), home=home)
    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path) == {"root/etc/modprobe.d/someone-else.conf"}


@needs_bash
def test_uninstall_without_manifest_removes_the_standard_files(tmp_path: Path) -> None:
    home, prefix = tmp_path / "home", tmp_path / "root"
    assert run("install.sh", "--prefix", str(prefix), "--venv", home=home).returncode == 0
    (prefix / str(home).lstrip("/") / ".local/share/fercam/installed-files.txt").unlink()
    result = run("uninstall.sh", "--prefix", str(prefix), home=home)
    assert result.returncode == 0 and "no manifest" in result.stderr
    assert files_under(prefix) == set()


@needs_bash
@pytest.mark.parametrize("script", ["install.sh", "uninstall.sh"])
def test_help_and_unknown_options(script: str, tmp_path: Path) -> None:
    helped = run(script, "--help", home=tmp_path)
    assert helped.returncode == 0 and "--dry-run" in helped.stdout and "--prefix" in helped.stdout
    wrong = run(script, "--bogus", home=tmp_path)
    assert wrong.returncode != 0 and "unknown option: --bogus" in wrong.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck not installed (apt-get install shellcheck)")
def test_linux_scripts_are_shellcheck_clean() -> None:
    scripts = [str(LINUX / name) for name in ("install.sh", "uninstall.sh", "common.sh")]
    result = subprocess.run(["shellcheck", "-x", *scripts], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout


def _assigned(tree: ast.Module, name: str) -> object:
    node = next(
        n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == name for t in n.targets)
    )
    return ast.literal_eval(node.value)


def test_pyinstaller_spec_names_the_entry_models_and_excludes() -> None:
    source = (WINDOWS / "fercam.spec").read_text()
    tree = ast.parse(source)
    compile(tree, "fercam.spec", "exec")
    assert '"fercam" / "__main__.py"' in source and '"fercam/models"' in source
    patterns = _assigned(tree, "MODEL_PATTERNS")
    for model in (ROOT / "models").iterdir():  # every model and licence the runtime ships, not the training notes
        if model.suffix in (".tflite", ".onnx") or model.name.startswith("LICENSE-"):
            assert any(fnmatch(f"models/{model.name}", p) for p in patterns), model.name
    for pattern, dest in _assigned(tree, "PACKAGE_DATAS"):  # read from the package when the window starts
        assert glob(str(ROOT / pattern)) and dest == pattern.rsplit("/", 1)[0]
    assert "fercam/apps/window/static" in dict(_assigned(tree, "PACKAGE_DATAS")).values()
    assert {"tensorflow", "keras", "mtcnn"} <= set(_assigned(tree, "EXCLUDES"))
    assert '"ai_edge_litert.interpreter"' in source and '"pystray._win32"' in source and '"pystray._xorg"' in source
    assert (ROOT / "fercam" / "__main__.py").is_file()


def test_windows_scripts_register_unity_capture_as_fer_cam() -> None:
    install = (WINDOWS / "install.ps1").read_text()
    common = (WINDOWS / "common.ps1").read_text()
    assert "/i:UnityCaptureName=$CameraName" in install and '$CameraName = "FER Cam"' in common
    assert 'Verb = "RunAs"' in common and "SupportsShouldProcess" in install
    assert '@("/u", "/s")' in (WINDOWS / "uninstall.ps1").read_text()


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell (pwsh) not installed")
@pytest.mark.parametrize("script", ["install.ps1", "uninstall.ps1", "common.ps1"])
def test_windows_scripts_parse(script: str) -> None:
    command = (
        "$errors = $null; [System.Management.Automation.Language.Parser]::ParseFile("
        f"'{WINDOWS / script}', [ref]$null, [ref]$errors) | Out-Null; $errors | ForEach-Object {{ $_.ToString() }}; "
        "exit $errors.Count"
    )
    result = subprocess.run(["pwsh", "-NoProfile", "-Command", command], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.skipif(not Path("/usr/lib/python3/dist-packages/gi").is_dir(), reason="Debian's python3-gi missing")
def test_link_gi_makes_the_system_pygobject_importable_in_the_apps_environment(tmp_path: Path) -> None:
    """What gives an installed FER Cam the tray menu: the distribution's gi, linked into its venv."""
    venv = tmp_path / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    script = LINUX / "install.sh"
    out = subprocess.run(
        ["bash", "-c", f'source "{script}" && setup_paths && RECORDS=() && link_gi "{venv}" && echo "${{RECORDS[@]}}"'],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    assert out[0].startswith("+ ln -sfn ") and out[-1].startswith("file ") and out[-1].endswith("/gi")  # uninstallable
    check = "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk; print('ok')"
    assert subprocess.run([str(venv / "bin/python"), "-c", check], capture_output=True, text=True).stdout == "ok\n"
