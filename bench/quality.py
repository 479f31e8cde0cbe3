"""Benchmark: validating a 1M-row shard vs building it, in the same run (target: suites ≤ 25%).

    python bench/quality.py [--rows 1_000_000] [--threads 2]

Writes ``--rows`` distinct question/answer records (plus 100 copies of eval items) to JSON Lines,
trains a byte-level BPE, registers a 2,000-item eval set (``--role eval``), then times

1. the build of one ``--rows``-row shard (``corpus.build jsonl``: read, normalize, tokenize,
   decontaminate against the eval set, write Parquet + sidecars, checksum, register) — the
   baseline. The bench raises the writer's shard size so the whole version is one shard;
2. ``publish`` on it, as a build runs it: facts frame, the suites (``shard.schema``, ``qa.rows``,
   ``version.rows``) on the native engine, the catalog writes (validations, row hashes, duplicates);
3. the parts of (2) separately — each engine's start-up and suites, native and Great Expectations
   (the reference ``corpus.quality check`` uses) — and the decontamination filter's share of (1).

Prints each time and ``validation / build`` (the number BENCHMARKS.md records).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUBJECTS = "farmer baker teacher pilot doctor painter sailor miner gardener tailor nurse clerk".split()
THINGS = "apples loaves books maps boxes brushes ropes stones seeds buttons jars coins".split()


def record(i: int) -> dict:
    s, t = SUBJECTS[i % 12], THINGS[(i // 12) % 12]
    a, b = 10 + i % 997, i % 89
    return {"id": f"r{i}", "prompt": f"Record {i}: a {s} packs {a} {t} and sells {b} of them at the market; "
                                     f"how many {t} are left?", "answer": f"{a} - {b} = {a - b}. #### {a - b}"}


def eval_item(i: int) -> dict:
    return {"id": f"e{i}", "prompt": f"Eval problem {i} asks how many blue marbles remain in jar number {i} when "
                                     f"the children take out {i % 13} marbles every hour for a day",
            "answer": str(i)}


def write_jsonl(path: Path, records) -> None:
    import orjson

    with open(path, "wb") as f:
        for r in records:
            f.write(orjson.dumps(r) + b"\n")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    p.add_argument("--workdir", type=Path, default=None)
    args = p.parse_args()
    sys.path.insert(0, str(REPO))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import corpus.publish
    import corpus.shards
    from corpus.build import main as build_main
    from corpus.catalog import Catalog
    from corpus.tokenizer import train_tokenizer

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-quality-"))
    work.mkdir(parents=True, exist_ok=True)
    root = work / "data"
    t0 = time.perf_counter()
    evals = [eval_item(i) for i in range(2000)]
    write_jsonl(work / "eval.jsonl", evals)
    leaks = [{"id": f"leak{i}", "prompt": e["prompt"], "answer": e["answer"]} for i, e in enumerate(evals[:100])]
    write_jsonl(work / "train.jsonl", (record(i) for i in range(args.rows - len(leaks))))
    with open(work / "train.jsonl", "ab") as f:
        import orjson

        f.writelines(orjson.dumps(r) + b"\n" for r in leaks)
    texts = [f"{r['prompt']} {r['answer']}" for r in map(record, range(20_000))] + [e["prompt"] for e in evals]
    train_tokenizer(texts, vocab_size=4096).save(str(work / "tok.json"))
    print(f"inputs: {args.rows:,} records, tokenizer trained ({time.perf_counter() - t0:.1f} s)")

    common = ["--tokenizer", str(work / "tok.json"), "--data-dir", str(root), "--quiet", "--threads", str(args.threads),
              "--target-field", "answer", "--id-field", "id", "--val-ratio", "0", "--max-seq-len", "256"]
    assert build_main(["jsonl", "--from", str(work / "eval.jsonl"), "--role", "eval", *common]) == 0

    # one shard for the whole version; publish deferred so it is timed on its own
    writer_defaults = corpus.shards.ShardWriter.__init__.__defaults__
    corpus.shards.ShardWriter.__init__.__defaults__ = (False, args.rows + 1, 1 << 40)
    real_publish = corpus.publish.publish
    corpus.publish.publish = lambda catalog, root, vid, **_: ("validating", [])
    decontam_seconds = _time_decontamination()
    try:
        t0 = time.perf_counter()
        build_main(["jsonl", "--from", str(work / "train.jsonl"), *common])
        build_seconds = time.perf_counter() - t0
    finally:
        corpus.shards.ShardWriter.__init__.__defaults__ = writer_defaults
        corpus.publish.publish = real_publish
    catalog = Catalog(root)
    vid = catalog.query("SELECT id FROM versions WHERE kind = 'train'")[0][0]
    (shard,) = catalog.shards(vid)
    hits = catalog.query("SELECT count(*) FROM decontamination WHERE version = ?", [vid])[0][0]

    t0 = time.perf_counter()
    status, failures = real_publish(catalog, root, vid)
    validate_seconds = time.perf_counter() - t0
    parts = _parts(catalog, root, vid, shard)

    print(f"shard: {shard['rows']:,} rows, {shard['tokens']:,} tokens, {shard['bytes'] / 2**20:.0f} MiB Parquet; "
          f"{hits} eval rows dropped by decontamination; status {status} {failures[:2] if failures else ''}")
    print(f"build (baseline)        {build_seconds:8.1f} s   of which decontamination {decontam_seconds[0]:.1f} s "
          f"({decontam_seconds[0] / build_seconds:.1%})")
    print(f"validation (publish)    {validate_seconds:8.1f} s   = {validate_seconds / build_seconds:.1%} of the build "
          f"(target ≤ 25%; native engine)")
    for name, seconds in parts.items():
        print(f"  {name:<22}{seconds:8.1f} s")


def _time_decontamination() -> list[float]:
    """Wrap Decontaminator.apply to add up its time during the build (returned list is filled in)."""
    from corpus.quality.decontaminate import Decontaminator

    total = [0.0]
    apply = Decontaminator.apply

    def timed(self, *a, **k):
        t = time.perf_counter()
        try:
            return apply(self, *a, **k)
        finally:
            total[0] += time.perf_counter() - t

    Decontaminator.apply = timed
    return total


def _parts(catalog, root: Path, vid: str, shard: dict) -> dict[str, float]:
    """The pieces of validation, timed one by one on the same shard, with each engine."""
    import numpy as np

    from corpus.quality.dedup import record
    from corpus.quality.facts import shard_facts
    from corpus.quality.frame import Frame
    from corpus.quality.suites import Limits, rows_expectations, schema_expectations, version_expectations
    from corpus.quality.validate import in_both_splits, runner

    out = {}
    t = time.perf_counter()
    facts = shard_facts(root / shard["path"])
    out["facts frame"] = time.perf_counter() - t
    v = catalog.version(vid)
    limits = Limits("jsonl", 4096, 256, 3, int(v["rows"]), 0.01)
    n = len(facts.rows)
    frame = facts.rows.select(["id", "split", "text_hash"])
    frame["shard"] = np.full(n, shard["path"], dtype=object)
    frame["shard_split"] = np.full(n, "train", dtype=object)
    frame["in_both_splits"] = in_both_splits(frame["id"], frame["split"])
    for engine in ("native", "gx"):
        t = time.perf_counter()
        suites = runner(engine)  # GX: its import and an ephemeral context
        out[f"{engine}: start"] = time.perf_counter() - t
        t = time.perf_counter()
        suites.run("shard.schema", schema_expectations(False), facts.schema, "bench", index_column="column")
        suites.run("qa.rows", rows_expectations("qa", limits), facts.rows, "bench")
        out[f"{engine}: shard suites"] = time.perf_counter() - t
        t = time.perf_counter()
        suites.run("version.rows", version_expectations(limits), frame, "bench")
        out[f"{engine}: version suite"] = time.perf_counter() - t
    t = time.perf_counter()
    record(catalog, vid, "jsonl", "train", frame)
    out["row hashes + dedup"] = time.perf_counter() - t
    return out


if __name__ == "__main__":
    main()
