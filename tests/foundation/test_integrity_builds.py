"""Issue 14 items 3 and 6: concurrent builds of one version, SIGKILL leftovers, pool workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from corpus.catalog import Catalog
from tests.conftest import shared
from tests.foundation.helpers import REPO, run_cli


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}


def _build_cmd(root: Path, tokenizer_path, src, *extra) -> list[str]:
    return [sys.executable, "-m", "corpus.build", "gsm8k" if str(src).endswith(".jsonl") else "wiki",
            "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir", str(root), "--quiet", *extra]


def test_two_builds_of_one_version_at_once_one_wins_the_other_says_already_built(tmp_path, tokenizer_path):
    src = shared("gsm8k", "test.jsonl")  # built as what it is, evaluation data: the race is the same
    root = tmp_path / "data"
    procs = [subprocess.Popen(_build_cmd(root, tokenizer_path, src, "--split", "test"), env=_env(), cwd=REPO,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert all("Traceback" not in err for _, err in outs)
    assert sum("already built: v" in out for out, _ in outs) == 1, outs
    (vid, rows), = Catalog(root).query("SELECT id, rows FROM versions")
    assert rows > 1000
    v = run_cli("corpus.verify", "--data-dir", str(root))
    assert v.returncode == 0, v.stderr  # the winner's registered files were never touched
    assert not list(root.glob("shards/gsm8k/.*staging*"))


def _children(pid: int) -> set[int]:
    out = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.add(int(entry.name))
    return out


def _cmdline(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _kill_while_staging(root: Path, cmd: list[str], busy_s: float) -> tuple[set[int], bool]:
    """Start the build, SIGKILL it once it stages with both workers up (after ``busy_s``); returns
    the workers and whether the staging directory was still there (the kill came before the rename)."""
    proc = subprocess.Popen(cmd, env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    workers: set[int] = set()
    staging: list = []
    while time.monotonic() < deadline:
        staging = list(root.glob("shards/wiki/.*.staging-*"))
        workers = {c for c in _children(proc.pid) if "spawn_main" in _cmdline(c)} if staging else set()
        if staging and len(workers) >= 2:
            time.sleep(busy_s)  # past their start-up: killed now, they are busy with batches
            break
        time.sleep(0.02)
    assert staging and len(workers) >= 2 and proc.poll() is None, "the build finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return workers, bool(list(root.glob("shards/wiki/.*.staging-*")))


def test_sigkill_leftovers_are_reclaimed_and_workers_die_with_the_parent(tmp_path, tokenizer_path):
    src = shared("wikitext2", "valid.txt")
    for attempt, busy_s in enumerate((1.5, 0.5, 0.1)):  # a fast machine may rename before a late kill
        root = tmp_path / f"data{attempt}"
        cmd = _build_cmd(root, tokenizer_path, src, "--workers", "2", "--batch-size", "64", "--threads", "1",
                         "--max-seq-len", "64")
        workers, left = _kill_while_staging(root, cmd, busy_s)
        time.sleep(0.5)
        assert [w for w in workers if _alive(w)] == []  # gone with their parent, not ~5 s later
        if left:
            break
    assert left, "every kill came after the staging was renamed"  # the kill left its staging behind
    p = subprocess.run(cmd, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert not list(root.glob("shards/wiki/.*.staging-*"))  # reclaimed by the next build of that version
    assert len(Catalog(root).query("SELECT id FROM versions")) == 1
