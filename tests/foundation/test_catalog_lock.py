"""Two real processes: a build waits for a catalog held by another process, or fails in one line."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from corpus.catalog import Catalog
from tests.foundation.helpers import REPO, run_cli, write_jsonl

HOLD = """
import sys, time
from pathlib import Path
from corpus.catalog import Catalog
read_only = len(sys.argv) > 3
with Catalog(Path(sys.argv[1])).connect(read_only=read_only) as con:
    if not read_only:
        con.execute("INSERT INTO quarantine VALUES ('holder', 'x', 'ref', NULL, 'held')")
    print("locked", flush=True)
    if float(sys.argv[2]) > 0:
        time.sleep(float(sys.argv[2]))
    else:
        sys.stdin.readline()  # held until the test says release (a line or EOF): load cannot reorder it
"""


def _hold(root, seconds, read_only=False):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(root), str(seconds), *(["ro"] if read_only else [])],
                            stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                            text=True, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert proc.stdout.readline().strip() == "locked"
    return proc


def _records(n=30):
    return [{"question": f"What is {i} + {i}?", "answer": f"{i} + {i} = {2 * i}\n#### {2 * i}"} for i in range(n)]


def test_second_writer_waits_and_registers(tmp_path, tokenizer_path):
    root = tmp_path / "data"
    Catalog(root).query("SELECT 1")  # create and migrate
    src = write_jsonl(tmp_path / "a.jsonl", _records())
    holder = _hold(root, 0)  # until released below
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "HRM_CATALOG_TIMEOUT": "60"}
    builder = subprocess.Popen([sys.executable, "-m", "corpus.build", "gsm8k", "--from", str(src), "--tokenizer",
                                str(tokenizer_path), "--data-dir", str(root)], stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, env=env, cwd=REPO)
    waiting = []
    for line in builder.stderr:  # the builder says it waits, then the holder lets go
        waiting.append(line)
        if "is locked by another process" in line:
            break
    started = time.monotonic()
    time.sleep(1.0)
    holder.stdin.close()
    holder.wait(timeout=30)
    out, rest = builder.communicate(timeout=120)
    proc = subprocess.CompletedProcess(builder.args, builder.returncode, out, "".join(waiting) + rest)
    assert proc.returncode == 0, proc.stderr
    assert time.monotonic() - started >= 1.0  # it really waited for the holder
    # and said so after a second: who holds the lock, how long it will retry, when it got it
    assert f"is locked by another process, pid {holder.pid} (" in proc.stderr
    assert "retrying for up to 60 s (HRM_CATALOG_TIMEOUT)" in proc.stderr and "got it after" in proc.stderr
    cat = Catalog(root)
    assert cat.query("SELECT count(*), sum(rows) FROM versions") == [(1, 30)]
    assert cat.query("SELECT reason FROM quarantine WHERE version = 'holder'") == [("held",)]


def test_writer_gives_up_after_its_budget_with_one_line(tmp_path, tokenizer_path):
    root = tmp_path / "data"
    Catalog(root).query("SELECT 1")
    src = write_jsonl(tmp_path / "a.jsonl", _records())
    holder = _hold(root, 8)
    try:
        proc = run_cli("corpus.build", "gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path),
                       "--data-dir", str(root), env={"HRM_CATALOG_TIMEOUT": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "stayed locked by another process" in err and "\n" not in err and "HRM_CATALOG_TIMEOUT" in err
    assert Catalog(root).query("SELECT count(*) FROM versions") == [(0,)]


def test_reading_commands_share_the_catalog_with_a_reader(tmp_path, tokenizer_path):
    """corpus.verify opens the catalog read-only: another reader holding it does not make it wait."""
    root = tmp_path / "data"
    src = write_jsonl(tmp_path / "a.jsonl", _records())
    assert run_cli("corpus.build", "gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path),
                   "--data-dir", str(root)).returncode == 0
    holder = _hold(root, 20, read_only=True)
    try:
        started = time.monotonic()
        proc = run_cli("corpus.verify", "--data-dir", str(root), env={"HRM_CATALOG_TIMEOUT": "3"})
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert proc.returncode == 0, proc.stderr
    assert "locked" not in proc.stderr and took < 15
