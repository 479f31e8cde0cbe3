"""bench/near_dedup.py runs at a tiny size and prints the lines a reader looks for."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared

pytest.importorskip("rensa", reason="near-dedup needs rensa (a core dependency)")


def test_near_dedup_bench_prints_overhead_and_throughput(tmp_path):
    shared("wikitext2", "valid.txt")
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([sys.executable, str(REPO / "bench" / "near_dedup.py"), "--tokens", "1", "--repeat", "1",
                          "--vocab-size", "1024", "--skip-planted", "--workdir", str(tmp_path)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    text = out.stdout
    assert "corpus.build --near-dedup off" in text and "corpus.build --near-dedup flag" in text
    assert "overhead flag/off:" in text and "(target <= 1.25)" in text
    assert "near-dedup throughput:" in text and "rows/s" in text and "tokens/s" in text
    assert "near-dedup signatures" in text  # the phase table of the flag build
    assert "planted near-duplicates" not in text  # --skip-planted
