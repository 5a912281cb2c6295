"""`fercam analyze --cluster`: one Ray task per input, on a Ray cluster or a local Ray instance.

Workers write each input's folder straight into OUT, which must be a path every node reaches (a shared
file system), under a temporary name renamed when complete. A rerun keeps the inputs whose folders are
complete and analyses the rest; Ray retries a task whose worker died; a bad input becomes a failed row
in OUT/index.csv and the others go on.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import replace
from pathlib import Path

from fercam.apps.analyze.analyze import try_analyze
from fercam.apps.analyze.archive import JobIndex
from fercam.apps.analyze.inputs import Input, collect_inputs, out_dirs
from fercam.apps.analyze.outputs import OutputLock, remove_leftovers
from fercam.apps.analyze.results import DEFAULT_OPTIONS, InputResult, Options
from fercam.errors import one_line
from fercam.source_specs import STREAM_SCHEMES

INSTALL_HINT = 'pip install "fercam[cluster]"'
RETRIES = 3  # re-runs of a task whose worker process or node died
LOOPBACK = "127.0.0.1"
ROOT = Path(__file__).resolve().parents[3]  # the folder holding the fercam package, for workers to import it


def import_ray(address: str):
    if address == "local" or address.rsplit(":", 1)[0] in (LOOPBACK, "localhost"):
        # Ray swaps a loopback address for this machine's LAN address, where a head started on loopback does not
        # listen; this switch of Ray's (read when Ray is imported) keeps a single-machine Ray on loopback.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # research archives: nothing reported anywhere
    try:
        import ray
    except ImportError:
        raise RuntimeError(f"--cluster needs Ray, which is not installed; install it with: {INSTALL_HINT}") from None
    return ray


def analyze_on_cluster(
    inputs: list[str],
    out: str | Path,
    *,
    address: str,
    jobs: int = 0,
    task_cpus: int = 1,
    options: Options = DEFAULT_OPTIONS,
) -> list[InputResult]:
    """Analyse the inputs not yet complete in `out`; the job view (index.csv, summary.json) covers all."""
    ray = import_ray(address)
    items = list({item.spec: item for item in map(_absolute, collect_inputs(inputs))}.values())
    if not items:
        raise ValueError("no inputs to analyse")
    out = Path(out).resolve()  # workers run elsewhere: every path they get must be absolute
    with OutputLock(out):
        remove_leftovers(out)
        folders = out_dirs([item.spec for item in items], out)  # under the lock: no other run is choosing
        index = JobIndex(out, items)
        todo = [(item, folder) for item, folder in zip(items, folders) if not index.keep_if_complete(item, folder)]
        for item in (item for item, _ in todo if item.error):  # a folder or manifest that could not be listed
            index.record(item.spec, InputResult(item.spec, error=item.error))
        todo = [(item, folder) for item, folder in todo if not item.error]
        print(f"fercam: {len(items) - len(todo)} input(s) complete from an earlier run, {len(todo)} to analyse")
        index.write()
        start = time.monotonic()
        if todo:
            _run_tasks(ray, address, jobs, task_cpus, todo, replace(options, progress=False), index)
        remove_leftovers(out)  # folders of attempts whose worker died
        index.finish(time.monotonic() - start)
    return index.ordered_results()


def _absolute(item: Input) -> Input:
    if item.spec.lower().startswith(STREAM_SCHEMES) or not Path(item.spec).exists():
        return item
    return replace(item, spec=str(Path(item.spec).absolute()))


def connect(ray, address: str, cpus: int) -> None:
    """Join the cluster at `address`, or start a Ray instance on this machine (`local`), on loopback only."""
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {"env_vars": {"PYTHONPATH": pythonpath}}
    common = dict(runtime_env=env, log_to_driver=False, logging_level=logging.ERROR)
    if address == "local":
        ray.init(num_cpus=cpus, include_dashboard=False, _node_ip_address=LOOPBACK, **common)
    else:
        ray.init(address=address, **common)


def _run_tasks(ray, address, jobs: int, task_cpus: int, todo, options: Options, index: JobIndex) -> None:
    """One task per input, each reserving `task_cpus` cores; results recorded as they come, in any order."""
    from tqdm import tqdm

    connect(ray, address, max(jobs or os.cpu_count() or 1, task_cpus))
    try:
        cores = ray.cluster_resources().get("CPU", 0)
        if cores < task_cpus:
            raise ValueError(f"--task-cpus {task_cpus}: the cluster has only {cores:g} cores")
        task = ray.remote(num_cpus=task_cpus, max_retries=RETRIES)(_task)
        pending = {task.remote(item.spec, str(folder), options, task_cpus): item for item, folder in todo}
        done = len(index.items) - len(todo)
        with tqdm(total=len(index.items), initial=done, unit="input", desc="archive", dynamic_ncols=True) as bar:
            bar.set_postfix(index.counts())
            while pending:
                (ready,), _ = ray.wait(list(pending), num_returns=1)
                item = pending.pop(ready)
                index.record(item.spec, _result(ray, ready, item.spec))
                bar.set_postfix(index.counts(), refresh=False)
                bar.update(1)
    finally:
        ray.shutdown()


def _task(spec: str, folder: str, options: Options, cpus: int) -> InputResult:
    """Runs on a worker: OpenCV kept to the cores the task reserved, so tasks side by side do not fight."""
    import cv2

    cv2.setNumThreads(cpus)
    return try_analyze(spec, Path(folder), options)


def _result(ray, ref, spec: str) -> InputResult:
    try:
        return ray.get(ref)
    except ray.exceptions.RayError as exc:  # the task's worker died more than RETRIES times
        return InputResult(spec, error=f"lost after {RETRIES} retries: {one_line(exc)}")
