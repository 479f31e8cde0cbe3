"""Benchmark: the trainer's reader (plan → memory-mapped shard sidecars) vs a flat numpy memmap.

    python bench/reader.py [--positions 100_000] [--batch-size 8] [--seq-len 512]

Uses the data root of bench/mix.py (built on first use). Plans ``--positions`` train positions,
then writes the very same token sequences, in plan order, into one flat ``.npy`` plus offsets:
the layout a pre-packed dataset would have. Both are read into right-padded int32 batches of
``--batch-size`` × ``--seq-len`` (the trainer's input), warm page cache, best of ``--repeat``:

  * baseline: slice the flat memmap at the offsets, copy into the batch array;
  * ours: ``PlanReader(plan).iter_batches(...)`` (plan row groups → shard LRU → index sidecar →
    token sidecar slices), and the per-sample ``Sample`` iterator for reference;
  * ours with read-path checks on (corpus.mixing.readcheck: each shard's sidecars hashed with
    xxh3 against the catalog on first open, and forgotten before every round, so each round
    pays what a fresh process pays); the others run with them off. Target: under 5% time.

  * ``--through-cache``: ours again, on another "node" reading the same plan from object storage
    (corpus.storage): the data root published to a local moto S3 server, the node's cache
    filled by one cold pass (timed and printed), then read warm: the shards are symlinks into
    the node's content-addressed cache, memory-mapped as local ones. Target: the warm ratio
    equals the local reader's.

Prints real (unpadded) tokens/s for each and the ratio ours / baseline (target ≥ 0.5).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def load_mix_bench():
    spec = importlib.util.spec_from_file_location("bench_mix", Path(__file__).with_name("mix.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_flat(plan, out: Path) -> tuple[Path, Path]:
    """The plan's train tokens, flat and in plan order, plus int64 offsets (the baseline's data)."""
    from corpus.mixing import PlanReader

    tokens_path, offsets_path = out / "flat.tokens.npy", out / "flat.offsets.npy"
    if tokens_path.exists() and offsets_path.exists():
        return tokens_path, offsets_path
    n = len(plan.positions("train"))
    lengths = np.empty(n, dtype=np.int64)
    pieces = []
    for i, sample in enumerate(PlanReader(plan, "train")):
        pieces.append(sample.tokens.astype(np.uint16))
        lengths[i] = len(sample.tokens)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    np.save(tokens_path, np.concatenate(pieces))
    np.save(offsets_path, offsets)
    return tokens_path, offsets_path


def baseline_batches(tokens_path: Path, offsets_path: Path, batch: int, seq_len: int, pad: int):
    flat = np.load(tokens_path, mmap_mode="r").view(np.ndarray)  # plain view: no memmap hooks per slice
    offsets = np.load(offsets_path).tolist()
    n = len(offsets) - 1
    for start in range(0, n, batch):
        rows = min(batch, n - start)
        out = np.full((rows, seq_len), pad, dtype=np.int32)
        lengths = np.empty(rows, dtype=np.int32)
        for j in range(rows):
            lo = offsets[start + j]
            m = min(offsets[start + j + 1] - lo, seq_len)
            out[j, :m] = flat[lo:lo + m]
            lengths[j] = m
        yield out, lengths


def through_cache_root(root: Path, plan_id: str, work: Path) -> tuple[Path, float, object]:
    """``root`` published to a local moto S3 server by a "driver", then opened by a fresh "node":
    (the node's working root, seconds of its cold first pass, the server to stop)."""
    import shutil
    import socket

    import boto3
    from moto.server import ThreadedMotoServer

    from corpus.catalog import Catalog
    from corpus.mixing import PlanReader, open_plan
    from corpus.storage import publish_remote
    from corpus.storage.roots import prepare

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    import logging

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}")
    boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"]).create_bucket(Bucket="bench")
    url = "s3://bench/reader"
    shutil.rmtree(work, ignore_errors=True)
    os.environ["HRM_CACHE"] = str(work / "driver")
    driver = prepare(url)  # an empty bucket: this process is its driver
    for path in root.rglob("*"):  # the bench root's files, hard-linked (no copy), its catalog copied
        if path.is_file() and not path.name.startswith("catalog.duckdb") and path.name != ".lock":
            dest = driver / path.relative_to(root)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, dest)
    shutil.copyfile(root / "catalog.duckdb", driver / "catalog.duckdb")
    catalog = Catalog(driver)
    versions = [r[0] for r in catalog.query("SELECT DISTINCT version FROM mix_components WHERE mix = ?", [plan_id])]
    for version in [*versions, plan_id]:
        publish_remote(driver, catalog, version, quiet=True)
    os.environ["HRM_CACHE"] = str(work / "node")
    node = prepare(url)  # pulls the catalog copy, the plan and tokenizer files
    started = time.perf_counter()
    plan = open_plan(node, plan_id, verify="none")
    sum(int(b.lengths.sum()) for b in PlanReader(plan, "train").iter_batches(8, 512, plan.tokenizer.pad_id))
    return node, time.perf_counter() - started, server


def run(fn) -> tuple[float, int]:
    started = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - started, tokens


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--positions", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "mix")
    p.add_argument("--json", action="store_true")
    p.add_argument("--through-cache", action="store_true", help="also read the plan from a local S3 server "
                   "through a node cache (needs the [s3] extra and moto[server])")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    from corpus.mixing import PlanReader, open_plan
    from corpus.mixing.plan import make_plan

    mix = load_mix_bench()
    root, sources = mix.ensure_bench_root(args.workdir, args.seq_len)
    manifest = mix.write_manifest(args.workdir / f"reader{args.positions}.toml", sources, args.positions, 1000,
                                  1000, args.seq_len)
    plan_id = make_plan(manifest, root, log=lambda m: print(m, file=sys.stderr)).id
    plan = open_plan(root, plan_id)
    pad = plan.tokenizer.pad_id
    out = args.workdir / f"flat-{plan_id}"
    out.mkdir(parents=True, exist_ok=True)
    tokens_path, offsets_path = write_flat(plan, out)

    # same batches, same bytes: check the first 200
    ours = PlanReader(plan, "train").iter_batches(args.batch_size, args.seq_len, pad)
    for (base, base_len), batch in zip(baseline_batches(tokens_path, offsets_path, args.batch_size, args.seq_len, pad),
                                       (next(ours) for _ in range(200))):
        assert np.array_equal(base, batch.tokens) and np.array_equal(base_len, batch.lengths)

    def baseline() -> int:
        return sum(int(lengths.sum()) for _, lengths in
                   baseline_batches(tokens_path, offsets_path, args.batch_size, args.seq_len, pad))

    from corpus.mixing import readcheck

    def reader_batches(checks: bool = False, data: Path = root) -> int:
        os.environ[readcheck.ENV] = "1" if checks else "0"
        readcheck.forget()  # as in a fresh process: every shard file is hashed on its first open
        reader = PlanReader(open_plan(data, plan_id, verify="none"), "train")
        return sum(int(b.lengths.sum()) for b in reader.iter_batches(args.batch_size, args.seq_len, pad))

    def reader_batches_checked() -> int:
        return reader_batches(checks=True)

    def reader_samples() -> int:
        os.environ[readcheck.ENV] = "0"
        reader = PlanReader(open_plan(root, plan_id, verify="none"), "train")
        return sum(min(len(s.tokens), args.seq_len) for s in reader)

    # interleaved rounds, so a busy machine slows every variant alike; best round per variant
    variants = (("flat numpy memmap (baseline)", baseline), ("PlanReader.iter_batches", reader_batches),
                ("PlanReader.iter_batches, read-path checks", reader_batches_checked),
                ("PlanReader samples (Sample objects, ids)", reader_samples))
    cold, server = None, None
    if args.through_cache:
        node, cold, server = through_cache_root(root, plan_id, args.workdir / "through-cache")
        variants += (("PlanReader.iter_batches, s3 node cache (warm)", lambda: reader_batches(data=node)),)
    rounds: dict[str, list[tuple[float, int]]] = {name: [] for name, _ in variants}
    for _ in range(args.repeat):
        for name, fn in variants:
            rounds[name].append(run(fn))
    results = {}
    for name, runs in rounds.items():
        seconds, tokens = min(runs)
        results[name] = {"seconds": round(seconds, 3), "tokens": tokens, "tokens_per_s": tokens / seconds,
                         "batches_per_s": -(-args.positions // args.batch_size) / seconds}
    base = results["flat numpy memmap (baseline)"]["tokens_per_s"]
    base_rounds = rounds["flat numpy memmap (baseline)"]
    for name, r in results.items():
        r["ratio"] = round(r["tokens_per_s"] / base, 3)
        per_round = [b[0] / o[0] for b, o in zip(base_rounds, rounds[name])]
        r["ratio_median_of_rounds"] = round(sorted(per_round)[len(per_round) // 2], 3)
    off, on = rounds["PlanReader.iter_batches"], rounds["PlanReader.iter_batches, read-path checks"]
    per_round = sorted(c[0] / o[0] - 1 for o, c in zip(off, on))
    checks = {"best_of_rounds": round(min(c[0] for c in on) / min(o[0] for o in off) - 1, 4),
              "median_of_rounds": round(per_round[len(per_round) // 2], 4)}
    if server is not None:
        server.stop()
        local, cached = rounds["PlanReader.iter_batches"], rounds["PlanReader.iter_batches, s3 node cache (warm)"]
        per_round = sorted(c[0] / o[0] - 1 for o, c in zip(local, cached))
        checks["through_cache_warm_vs_local"] = {
            "best_of_rounds": round(min(c[0] for c in cached) / min(o[0] for o in local) - 1, 4),
            "median_of_rounds": round(per_round[len(per_round) // 2], 4), "cold_first_pass_s": round(cold, 2)}
    report = {"plan": plan_id, "positions": args.positions, "batch": [args.batch_size, args.seq_len],
              "read_path_check_cost": checks,
              "flat_tokens": int(np.load(offsets_path)[-1]), "results": results}
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"plan {plan_id}: {args.positions:,} positions, {report['flat_tokens']:,} tokens, "
          f"batches {args.batch_size}×{args.seq_len}, best of {args.repeat} interleaved rounds")
    print(f"read-path checks (xxh3 of each shard file on first open, fresh process every round): "
          f"{checks['best_of_rounds']:+.1%} time best vs best, {checks['median_of_rounds']:+.1%} median of rounds")
    if "through_cache_warm_vs_local" in checks:
        t = checks["through_cache_warm_vs_local"]
        print(f"s3 node cache, warm vs local: {t['best_of_rounds']:+.1%} time best vs best, "
              f"{t['median_of_rounds']:+.1%} median of rounds (cold first pass, downloads included: "
              f"{t['cold_first_pass_s']:.1f} s)")
    for name, r in results.items():
        print(f"  {name:<44} {r['tokens_per_s'] / 1e6:7.2f} M tokens/s  {r['batches_per_s']:9,.0f} batches/s  "
              f"×{r['ratio']:.2f} (median of rounds ×{r['ratio_median_of_rounds']:.2f})")


if __name__ == "__main__":
    main()
