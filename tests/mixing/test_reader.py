"""The reading API the trainer codes against: order, ranks, resume, batches, refusals, memory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.mixing import PlanReader, Sample, open_plan
from corpus.mixing.plan import make_plan
from tests.mixing.conftest import DATA, SOURCES
from tests.mixing.helpers import run_python, write_manifest

PLAIN = [{"name": s["name"], "weight": s["weight"]} for s in SOURCES]


@pytest.fixture(scope="module")
def plan_id(mix_root, tmp_path_factory) -> str:
    path = write_manifest(tmp_path_factory.mktemp("m") / "reader.toml", DATA, PLAIN)
    return make_plan(path, mix_root, log=lambda m: None).id


def shard_rows(root: Path, catalog_path: str) -> dict:
    t = pq.read_table(root / catalog_path, columns=["id", "prompt_ids", "target_ids"])
    return {"id": t.column("id").to_pylist(), "prompt": t.column("prompt_ids").to_pylist(),
            "target": t.column("target_ids").to_pylist()}


def test_samples_follow_the_plan_and_match_the_shard_rows(mix_root, plan_id):
    plan = open_plan(mix_root, plan_id)
    assert plan.id == plan_id and len(plan.positions("train")) == 6000 and len(plan.positions("val")) == 300
    assert plan.max_seq_len == 256 and len(plan.tokenizer_sha) == 64 and len(plan.manifest_sha) == 64
    cols = plan.positions("train")[0:400]
    shards = {(c["version"], s["idx"]): shard_rows(mix_root, s["path"])
              for c in plan.sources for s in Catalog(mix_root).shards(c["version"], "train")}
    samples = PlanReader(plan, "train").take(400)
    assert all(isinstance(s, Sample) for s in samples)
    assert [s.position for s in samples] == list(range(400))
    for s, comp, shard, row, tier in zip(samples, cols["component"], cols["shard"], cols["row"], cols["tier"]):
        source = plan.sources[comp]
        rows = shards[(source["version"], int(shard))]
        assert s.source == source["source"] and s.tier == tier and s.id == rows["id"][row]
        assert s.tokens.tolist() == rows["prompt"][row] + rows["target"][row]
        assert s.prompt_len == len(rows["prompt"][row]) and np.issubdtype(s.tokens.dtype, np.integer)


def test_ranks_partition_the_plan_and_resume_anywhere(mix_root, plan_id):
    plan = open_plan(mix_root, plan_id)
    everything = [(s.position, s.id) for s in PlanReader(plan, "train")]
    assert [p for p, _ in everything] == list(range(6000))
    start, world = 1234, 3
    parts = []
    for rank in range(world):
        reader = PlanReader(plan, "train", start=start, rank=rank, world_size=world)
        assert len(reader) == len(range(start + rank, 6000, world))
        got = [(s.position, s.id) for s in reader]
        assert [p for p, _ in got] == list(range(start + rank, 6000, world))
        parts.extend(got)
    assert sorted(parts) == everything[start:]
    reader = PlanReader(plan, "train", start=70_000 % 6000)
    first = reader.take(5)
    assert reader.position == first[-1].position + 1
    resumed = PlanReader(plan, "train", start=reader.position).take(5)
    assert [s.position for s in first + resumed] == list(range(70_000 % 6000, 70_000 % 6000 + 10))
    with pytest.raises(UserError):
        PlanReader(plan, "train", rank=2, world_size=2)
    with pytest.raises(UserError):
        PlanReader(plan, "train", start=6001)


def test_batches_equal_samples(mix_root, plan_id):
    plan = open_plan(mix_root, plan_id)
    reader = PlanReader(plan, "val", start=3, rank=1, world_size=2)
    samples = list(PlanReader(plan, "val", start=3, rank=1, world_size=2))
    batches = list(reader.iter_batches(8, seq_len=64, pad_id=-1, with_ids=True))
    assert [len(b.positions) for b in batches] == [8] * (len(samples) // 8) + ([len(samples) % 8] if len(samples) % 8 else [])
    flat = [(b, i) for b in batches for i in range(len(b.positions))]
    assert len(flat) == len(samples)
    for (b, i), s in zip(flat, samples):
        n = min(len(s.tokens), 64)
        assert b.positions[i] == s.position and b.ids[i] == s.id and b.lengths[i] == n
        assert b.tokens[i, :n].tolist() == s.tokens[:n].tolist() and np.all(b.tokens[i, n:] == -1)
        assert b.prompt_lens[i] == min(s.prompt_len, n) and plan.sources[b.components[i]]["source"] == s.source
    assert batches[0].tokens.dtype == np.int32 and batches[0].tokens.shape == (8, 64)


def test_open_by_manifest_and_refusals(mix_root, plan_id, tmp_path):
    manifest = write_manifest(tmp_path / "reader.toml", DATA, PLAIN)
    plan = open_plan(mix_root, manifest)
    assert plan.id == plan_id and plan.manifest_sha == __import__("hashlib").sha256(manifest.read_bytes()).hexdigest()
    assert open_plan(mix_root, plan_id[:7]).id == plan_id
    with pytest.raises(UserError, match="unknown plan"):
        open_plan(mix_root, "pdoesnotexist")
    # a plan file whose bytes changed (same size) is refused
    path = plan.dir / "plan-train.parquet"
    original = path.read_bytes()
    tampered = bytearray(original)
    tampered[len(tampered) // 2] ^= 0xFF
    path.write_bytes(bytes(tampered))
    try:
        with pytest.raises(UserError, match="plan-train.parquet: sha256 .* does not match the catalog's .* \\(corrupted\\)"):
            open_plan(mix_root, plan_id)
        assert open_plan(mix_root, plan_id, verify="none").id == plan_id
    finally:
        path.write_bytes(original)
    # a shard sidecar that shrank is refused even by the quick check
    version = plan.sources[0]["version"]
    tokens = next((mix_root / "shards").rglob(f"{version}/.mmap/train-00000.tokens.npy"))
    saved = tokens.read_bytes()
    tokens.write_bytes(saved[:-2])
    try:
        with pytest.raises(UserError, match="train-00000.tokens.npy: size .* bytes, catalog .* bytes \\(truncated\\)"):
            open_plan(mix_root, plan_id)
    finally:
        tokens.write_bytes(saved)
    # a version that is no longer published is refused
    with Catalog(mix_root).connect() as con:
        con.execute("UPDATE versions SET status = 'failed' WHERE id = ?", [version])
    try:
        with pytest.raises(UserError, match=f"version {version} of synthetic:arith is failed, not published"):
            open_plan(mix_root, plan_id)
    finally:
        with Catalog(mix_root).connect() as con:
            con.execute("UPDATE versions SET status = 'published' WHERE id = ?", [version])
    assert open_plan(mix_root, plan_id, verify="full").id == plan_id


RSS_PROBE = """
import json, sys
from corpus.mixing import open_plan, PlanReader

def anon_kb():
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

root, pid, world = sys.argv[1], sys.argv[2], int(sys.argv[3])
plan = open_plan(root, pid)
reader = PlanReader(plan, "train", rank=0, world_size=world)
total = len(reader)
n, peak, early = 0, 0, None
for batch in reader.iter_batches(8, 256):
    n += len(batch.positions)
    if early is None and n >= total * 3 // 10:  # after the row-group and shard caches have filled
        early = anon_kb()
    if n % 400 == 0:
        peak = max(peak, anon_kb())
print(json.dumps({"early_kb": early, "peak_kb": max(peak, anon_kb()), "samples": n,
                  "positions": len(plan.positions("train"))}))
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs /proc to read RssAnon")
def test_reader_memory_does_not_grow_with_plan_length(mix_root, tmp_path):
    """Stream (rank 0 of 64, so every row group is decoded) a 200k-position plan and a 1.6M one,
    each in a fresh process: the peak anonymous RSS is the same, and flat from 30% of the big
    plan to its end. Holding the big plan's columns in memory would take ~20 MB more."""
    small = make_plan(write_manifest(tmp_path / "small.toml", {**DATA, "train_samples": 200_000}, PLAIN),
                      mix_root, log=lambda m: None).id
    big = make_plan(write_manifest(tmp_path / "big.toml", {**DATA, "train_samples": 1_600_000}, PLAIN),
                    mix_root, log=lambda m: None).id
    probe = tmp_path / "probe.py"
    probe.write_text(RSS_PROBE)

    def measure(pid: str) -> dict:
        proc = run_python(f"import sys; sys.argv = ['probe', {str(mix_root)!r}, {pid!r}, '64']; "
                          f"exec(open({str(probe)!r}).read())")
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout.strip().splitlines()[-1])

    s, b = measure(small), measure(big)
    assert b["positions"] == 8 * s["positions"] and b["samples"] == 25_000 and s["samples"] == 3_125
    mb = lambda kb: kb / 1024  # noqa: E731
    assert mb(b["peak_kb"] - s["peak_kb"]) < 6, (s, b)
    assert mb(b["peak_kb"] - b["early_kb"]) < 6, (s, b)  # measured ≈ 2 MB; a leak of the 25k batches is ~50 MB
