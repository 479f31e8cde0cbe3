"""bench/build.py and bench/small_build.py run at a tiny size and print the lines a reader looks for."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, shared


def _bench(script: str, *argv: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(REPO / "bench" / script), *argv], capture_output=True, text=True,
                         env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout


def test_build_bench_prints_ratios_targets_and_the_phase_split(tmp_path):
    shared("wikitext2", "valid.txt")
    out = _bench("build.py", "--tokens", "1", "--vocab-size", "1024", "--skip-peer", "--workdir", str(tmp_path))
    assert "corpus: 1 x WikiText-2 valid" in out and "threads=2 (a build with --workers W" in out and "workers=1" in out
    assert "raw baseline's own cpu" in out
    assert "build/raw       workers=1:" in out and "(target >= 0.90)" in out
    assert "raw encode_batch_fast" in out and "build/raw_fast  workers=1:" in out  # the build's own call
    assert "build/datasets" not in out  # --skip-peer
    assert "phase split" in out  # the table, or the line saying corpus.build has no --timings yet
    assert "token counts equal in every run (raw, raw fast, build w=1)" in out
    assert out.count("load ") >= 3  # around every run, at start and end


def test_small_build_bench_builds_1000_records_and_prints_the_target(tmp_path):
    shared("gsm8k", "train_sample.jsonl")
    shared("wikitext2", "valid.txt")
    out = _bench("small_build.py", "--repeat", "1", "--vocab-size", "1024", "--workdir", str(tmp_path))
    assert "published, 1000 records read" in out
    assert "1,000-record build: median" in out and "target <= 2.0 s:" in out
    assert "raw" in out and "python -c pass" in out and "phase split" in out
