"""The build as tasks: local and Ray executors give the same version and bytes; a killed build
(a Ray worker, then the driver) resumes by skipping its finished tasks and registers once."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corpus.build import main as build_main
from corpus.catalog import Catalog
from tests.conftest import shared

REPO = Path(__file__).resolve().parents[2]
TASK_RECORDS = "8"  # WikiText-2 valid's 60 articles: 8 tasks


def _args(root: Path, tokenizer: Path, *extra: str) -> list[str]:
    return ["wiki", "--from", str(shared("wikitext2", "valid.txt")), "--tokenizer", str(tokenizer),
            "--data-dir", str(root), "--max-seq-len", "256", "--task-records", TASK_RECORDS, "--quiet", *extra]


def _digests(root: Path) -> dict[str, str]:
    """Every file of every version (shards, sidecars, signatures, quarantine) by its path."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((root / "shards").rglob("*")) if p.is_file() and not p.name.endswith(".lock")}


def _versions(root: Path) -> list[tuple]:
    return Catalog(root).query("SELECT id, status, rows, tokens FROM versions")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
            "OMP_NUM_THREADS": "1"}


def _task_manifests(root: Path) -> list[Path]:
    return sorted(root.glob("shards/wiki/.*.tasks/t*/task.json"))


def _kill_when(proc: subprocess.Popen, ready, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the build ended before it could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline, "the build never got there"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


@pytest.fixture(scope="module")
def local_build(tmp_path_factory, tokenizer_path):
    root = tmp_path_factory.mktemp("local")
    assert build_main(_args(root, tokenizer_path)) == 0
    return root


def test_killed_local_build_resumes_with_its_finished_tasks(tmp_path, tokenizer_path, local_build, capfd):
    cmd = [sys.executable, "-m", "corpus.build", *_args(tmp_path, tokenizer_path)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _kill_when(proc, lambda: len(_task_manifests(tmp_path)) >= 1)
    finished = len(_task_manifests(tmp_path))
    assert _versions(tmp_path) == []  # killed before registration: nothing registered
    capfd.readouterr()
    assert build_main(_args(tmp_path, tokenizer_path)) == 0
    err = capfd.readouterr().err
    skipped = int(err.split("resumed: ")[1].split()[0])
    assert skipped >= finished
    assert len(_versions(tmp_path)) == 1 and _versions(tmp_path)[0][1] == "published"
    assert _digests(tmp_path) == _digests(local_build)  # resumed bytes are a fresh build's bytes
    assert not _task_manifests(tmp_path)  # registered: the task files are gone


@pytest.fixture(scope="module")
def ray_cluster():
    """One local Ray cluster for the module (a start costs ~10 s); its workers import this checkout."""
    ray = pytest.importorskip("ray")
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = _env()["PYTHONPATH"]  # the workers the raylet spawns inherit it
    ray.init(num_cpus=2, include_dashboard=False, logging_level="warning", log_to_driver=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": "1"}})
    try:
        yield ray
    finally:
        ray.shutdown()
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def test_ray_and_local_executors_give_one_version_and_the_same_bytes(tmp_path, tokenizer_path, local_build,
                                                                     ray_cluster):
    assert build_main(_args(tmp_path, tokenizer_path, "--executor", "ray", "--workers", "2")) == 0
    assert _versions(tmp_path) == _versions(local_build)  # the same id, rows and tokens
    assert _digests(tmp_path) == _digests(local_build) and len(_digests(tmp_path)) > 8


def _ray_task_pids() -> list[int]:
    """Ray workers running a build task now (Ray names the process after the task's function)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if b"_run_ray_task" in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="finds Ray's worker processes in /proc")
def test_killed_ray_worker_then_driver_resumes_and_registers_once(tmp_path, tokenizer_path, local_build,
                                                                 ray_cluster, capfd):
    address = ray_cluster.get_runtime_context().gcs_address
    cmd = [sys.executable, "-m", "corpus.build",
           *_args(tmp_path, tokenizer_path, "--executor", "ray", "--ray-address", address)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not _ray_task_pids():  # a worker busy with a task: killed (Ray retries its task elsewhere)
        assert proc.poll() is None, f"the build ended before a worker could be killed: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    killed = _ray_task_pids()[0]
    os.kill(killed, signal.SIGKILL)
    _kill_when(proc, lambda: len(_task_manifests(tmp_path)) >= 1)  # then the driver
    finished = len(_task_manifests(tmp_path))
    assert _versions(tmp_path) == []
    capfd.readouterr()
    assert build_main(_args(tmp_path, tokenizer_path, "--executor", "ray")) == 0
    skipped = int(capfd.readouterr().err.split("resumed: ")[1].split()[0])
    assert skipped >= finished
    assert _versions(tmp_path) == _versions(local_build)  # registered exactly once, the same version
    assert _digests(tmp_path) == _digests(local_build)
