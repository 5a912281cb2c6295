"""`fercam analyze --cluster` against a real Ray cluster on 127.0.0.1, started once for this module.

Drivers that a test kills run as their own `fercam` process; the others run in this one.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fercam.apps.analyze.analyze import analyze_inputs
from fercam.apps.analyze.results import Options
from fercam.apps.cli import main

# As `fercam analyze --cluster 127.0.0.1:PORT` does before importing Ray: keep Ray on loopback (see cluster.py).
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
ray = pytest.importorskip("ray", reason="Ray is the optional fercam[cluster] extra")

ROOT = Path(__file__).resolve().parents[1]
INSTALL = 'pip install "fercam[cluster]"'
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def cluster():
    from ray.cluster_utils import Cluster

    head = {"num_cpus": 2, "include_dashboard": False, "node_ip_address": "127.0.0.1"}
    started = Cluster(initialize_head=True, head_node_args=head)
    yield started.address
    started.shutdown()


def read_index(out: Path) -> dict[str, dict]:
    with (out / "index.csv").open(newline="") as f:
        return {Path(row["input"]).name: row for row in csv.DictReader(f)}


def start_driver(*args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "fercam", "analyze", *args]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(condition, child: subprocess.Popen, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert child.poll() is None, child.communicate()
        found = condition()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s")


def wait_until_gone(pid: int, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} still runs {timeout} s after its driver died")


def test_cluster_outputs_match_a_plain_run_and_a_corrupt_input_fails_alone(media_dir, cluster, tmp_path, capsys):
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 20_000, dtype=np.uint8).tobytes())
    good = [media_dir / "fer_test.mp4", media_dir / "two_people.jpg"]
    manifest = tmp_path / "study.csv"
    manifest.write_text(f"path,participant\n{good[0]},p1\n{corrupt.name},p2\n{good[1]},p3\n")
    out = tmp_path / "cluster"
    assert main(["analyze", str(manifest), "-o", str(out), "--cluster", cluster, "--every", "3"]) == 1
    assert f"fercam: failed {corrupt}: cannot read video" in capsys.readouterr().err
    analyze_inputs([str(p) for p in good], tmp_path / "plain", Options(every=3), jobs=1)
    for clip in good:
        for name in ("timeline.csv", "summary.json"):
            assert (out / clip.stem / name).read_bytes() == (tmp_path / "plain" / clip.stem / name).read_bytes()
    index = read_index(out)
    assert [row["participant"] for row in index.values()] == ["p1", "p2", "p3"]
    assert index["corrupt.mp4"]["status"] == "failed" and "cannot read video" in index["corrupt.mp4"]["error"]
    assert index["fer_test.mp4"]["status"] == "done" and float(index["fer_test.mp4"]["duration_s"]) > 4
    assert index["two_people.jpg"]["faces"] == "2" and index["two_people.jpg"]["dominant_emotion"]
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["inputs"], summary["done"], summary["failed"], summary["remaining"]) == (3, 2, 1, 0)
    assert sum(summary["emotion_shares"].values()) == pytest.approx(1, abs=1e-3)
    assert (out / "emotion_shares.png").read_bytes()[:8] == PNG_MAGIC


def test_a_manifest_that_cannot_be_read_is_one_failed_row(media_dir, cluster, tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    out = tmp_path / "out"
    photo = media_dir / "fr_obama.jpg"
    assert main(["analyze", str(empty), str(photo), "-o", str(out), "--cluster", cluster]) == 1
    assert "an empty manifest (expected a header such as path,label)" in capsys.readouterr().err
    index = read_index(out)
    assert index["empty.csv"]["status"] == "failed" and "an empty manifest" in index["empty.csv"]["error"]
    assert index["fr_obama.jpg"]["status"] == "done" and index["fr_obama.jpg"]["faces"] == "1"


def test_a_killed_worker_is_retried_and_the_job_completes(media_dir, cluster, tmp_path):
    out = tmp_path / "out"
    driver = start_driver(str(media_dir / "fer_woman2.mp4"), "-o", str(out), "--cluster", cluster, "--no-video")
    try:
        timeline = wait_for(lambda: [p for p in out.glob(".partial-*/timeline.csv") if p.stat().st_size > 2000], driver)
        worker = int(timeline[0].parent.name.rsplit("-", 1)[1])  # the staging folder is named after its writer
        os.kill(worker, signal.SIGKILL)
        stdout, stderr = driver.communicate(timeout=300)
    finally:
        driver.kill()
    assert driver.returncode == 0, stderr
    assert read_index(out)["fer_woman2.mp4"]["status"] == "done"
    assert read_index(out)["fer_woman2.mp4"]["frames"] == "464"
    assert not list(out.glob(".partial-*"))  # the killed attempt's half folder is cleared away


def test_a_rerun_after_an_interrupted_job_analyses_only_what_is_missing(media_dir, cluster, tmp_path, capsys):
    folder = tmp_path / "archive"
    folder.mkdir()
    for name in ("a.jpg", "b.jpg"):
        os.symlink(media_dir / "two_people.jpg", folder / name)
    os.symlink(media_dir / "fer_woman2.mp4", folder / "c.mp4")
    out = tmp_path / "out"
    args = [str(folder / "*.*"), "-o", str(out), "--cluster", cluster, "--no-video"]
    driver = start_driver(*args)
    try:
        wait_for(lambda: (out / "a" / "summary.json").exists(), driver)
        driver.send_signal(signal.SIGKILL)  # the driver dies mid-job: no chance to tidy up
        driver.communicate()
    finally:
        driver.kill()
    for staging in out.glob(".partial-*"):  # the dead driver's workers, which Ray ends in its own time
        wait_until_gone(int(staging.name.rsplit("-", 1)[1]))
    complete = sorted(p.parent.name for p in out.glob("[!.]*/summary.json"))
    assert "a" in complete and "c" not in complete  # c, 464 frames, cannot be done by then
    kept = (out / "a" / "summary.json").stat().st_mtime_ns
    assert main(["analyze", *args]) == 0
    missing = 3 - len(complete)
    assert f"{len(complete)} input(s) complete from an earlier run, {missing} to analyse" in capsys.readouterr().out
    assert (out / "a" / "summary.json").stat().st_mtime_ns == kept
    assert {row["status"] for row in read_index(out).values()} == {"done"}
    assert not list(out.glob(".partial-*"))


def test_without_ray_the_cluster_option_names_the_install_command(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets where the extra is not installed
    assert main(["analyze", "clip.mp4", "-o", str(tmp_path / "out"), "--cluster", "local"]) == 1
    err = capsys.readouterr().err.strip()
    assert err == "fercam: error: --cluster needs Ray, which is not installed; install it with: " + INSTALL
