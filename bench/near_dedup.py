"""Benchmark: what near-dedup costs a build, and how well it finds planted near-duplicates.

    python bench/near_dedup.py [--tokens 20000000] [--threads 2] [--repeat 2] [--skip-planted]

The corpus is bench/build.py's (WikiText-2 valid repeated to ``--tokens``, every sentence of copy
k marked with k, its own byte-level BPE; cached in ``--workdir``). Each round builds it twice in
fresh processes, ``corpus.build wiki --near-dedup off`` and ``--near-dedup flag`` (the default),
the order rotating round by round, and reads each build's ``--timings``:

    overhead    build(flag) / build(off), launch to exit (target <= 1.25)
    throughput  rows and tokens per second of near-dedup work in the flag build: the signature
                phase (per batch, beside the other per-row work) plus the band, verify and
                cluster phase after the last batch

``--repeat K`` reports medians and every value. Then, unless ``--skip-planted``, the recall and
precision on planted near-duplicates (GSM8K training problems with words or numbers changed,
WikiText paragraphs with an edited sentence) that tests/quality/test_near_dedup.py asserts.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.build import (WIKI, CorpusBuild, child_env, fail, in_workdir, loadavg, median_run,  # noqa: E402
                         phase_lines, prepare_corpus, stop_on_sigterm, values, with_outputs)

DATA = WIKI.parents[1]
TARGET_OVERHEAD = 1.25
NEAR_PHASES = ("near-dedup signatures", "near-dedup")


def near_seconds(timings: dict | None) -> float:
    """Seconds of near-dedup work a build's --timings file records (signatures summed over workers)."""
    phases = (timings or {}).get("phases") or {}
    return sum(float((phases.get(name) or {}).get("seconds") or 0.0) for name in NEAR_PHASES)


def run_rounds(args, corpus: Path, tok_path: Path, out: Path):
    env = child_env(RAYON_NUM_THREADS=str(args.threads))
    builder = CorpusBuild()
    jobs = ["off", "flag"]
    runs: dict[str, list] = {job: [] for job in jobs}
    for r in range(args.repeat):
        order = jobs[r % 2:] + jobs[:r % 2]
        print(f"round {r + 1} of {args.repeat}: {', '.join(order)}")
        for job in order:
            root = out / f"build-{job}-{r}"
            run = builder.run(["wiki", "--from", str(corpus), "--tokenizer", str(tok_path), "--data-dir", str(root),
                               "--max-seq-len", str(args.max_seq_len), "--threads", str(args.threads),
                               "--workers", str(args.workers), "--quiet", "--near-dedup", job],
                              out / f"timings-{job}-{r}.json", env)
            if run.proc.returncode:
                fail(f"corpus.build --near-dedup {job}", run.proc)
            from corpus.catalog import Catalog

            catalog = Catalog(root)
            (rows, tokens), = catalog.query("SELECT sum(rows), sum(tokens) FROM versions")
            run.tokens, run.info = int(tokens), {"rows": int(rows)}
            if job == "flag":
                (found, clusters), = catalog.query("SELECT near_duplicates, clusters FROM near_dedup_runs") or [(0, 0)]
                run.info.update(found=found, clusters=clusters, near_seconds=near_seconds(run.timings))
                run.note = (f"{found} near-duplicates in {clusters} clusters, near-dedup work "
                            f"{run.info['near_seconds']:.2f} s")
            runs[job].append(run)
            print(f"  {job:<5} {run.wall:7.2f} s  cpu {run.cpu:6.2f} s  {run.load()}  {run.tokens:,} tokens "
                  f"{run.info['rows']:,} rows  {run.note}")
            import shutil

            shutil.rmtree(root, ignore_errors=True)
    return runs, builder


def report(args, copies: int, runs, builder) -> None:
    med = {job: statistics.median(r.wall for r in rs) for job, rs in runs.items()}
    tokens, rows = runs["off"][0].tokens, runs["off"][0].info["rows"]
    print(f"\ncorpus: {copies} x WikiText-2 valid (sentences marked per copy), {tokens:,} tokens in {rows:,} windows "
          f"of {args.max_seq_len}; threads={args.threads} workers={args.workers} repeat={args.repeat}; "
          f"load average now {loadavg()}")
    for job in runs:
        print(f"corpus.build --near-dedup {job:<5} median {med[job]:7.2f} s  {tokens / med[job]:>10,.0f} tokens/s  "
              f"{values(runs[job])}")
    ratio = med["flag"] / med["off"]
    per_round = [f"{f.wall / o.wall:.2f}" for f, o in zip(runs["flag"], runs["off"])]
    print(f"overhead flag/off: {ratio:.2f}  (target <= {TARGET_OVERHEAD:.2f}) "
          f"{'PASS' if ratio <= TARGET_OVERHEAD else 'above'}; per round {' '.join(per_round)}")
    work = statistics.median(r.info["near_seconds"] for r in runs["flag"])
    if work > 0:
        print(f"near-dedup throughput: {rows / work:,.0f} rows/s, {tokens / work:,.0f} tokens/s "
              f"({work:.2f} s of near-dedup phases in the median flag build; the signature phase overlaps the "
              "encoder thread)")
    i, run = median_run(runs["flag"])
    print(f"\ncorpus.build --near-dedup flag (round {i + 1}, the median):")
    print("\n".join(phase_lines(run.timings, run.wall, builder.has_timings)))
    if tokens != runs["flag"][0].tokens or any(r.tokens != tokens for rs in runs.values() for r in rs):
        sys.exit("token counts differ between runs")


def planted(args) -> None:
    """Recall and precision on planted near-duplicates of real text (the test's measurement)."""
    from corpus.quality.near_dedup import NearDedupConfig, find_near_duplicates

    def shingles(text: str, n: int = 5) -> set[str]:
        w = re.findall(r"[^\W_]+", text.lower())
        return {" ".join(w[i:i + n]) for i in range(max(1, len(w) - n + 1))}

    def jac(a: str, b: str) -> float:
        sa, sb = shingles(a), shingles(b)
        return len(sa & sb) / len(sa | sb)

    def edit(text: str, rng: random.Random, k: int) -> str:
        words = text.split(" ")
        for _ in range(k):
            j = rng.randrange(len(words))
            words[j] = str(rng.randint(2, 999)) if words[j][:1].isdigit() else words[j] + "s"
        return " ".join(words)

    rng = random.Random(25)
    gsm = [json.loads(line) for line in (DATA / "gsm8k" / "train_sample.jsonl").read_text().splitlines()]
    paragraphs = [p.strip() for p in WIKI.read_text().split("\n") if len(p.split()) >= 120]
    sets = {
        "GSM8K train, 1-3 words/numbers of the question changed":
            ([f"{r['question']}\n{r['answer']}" for r in gsm],
             lambda i, t: f"{edit(gsm[i]['question'], rng, rng.randint(1, 3))}\n{gsm[i]['answer']}"),
        "WikiText-2 valid paragraphs, one sentence edited":
            (paragraphs, lambda i, t: " . ".join(
                s if j != 0 else edit(s, rng, 2) + " , as reported" for j, s in enumerate(t.split(" . ")))),
    }
    config = NearDedupConfig()
    print(f"\nplanted near-duplicates ({config.num_perm} permutations, {config.bands} bands, Jaccard >= "
          f"{config.threshold} over word {config.ngram}-grams; recall over planted pairs at true Jaccard >= threshold):")
    for name, (texts, make) in sets.items():
        texts = list(texts)
        pairs = []
        for i in range(0, len(texts), 2):
            pairs.append((i, len(texts)))
            texts.append(make(i, texts[i]))
        t0 = time.perf_counter()
        found = find_near_duplicates(config.signatures(texts), lambda idx: [texts[k] for k in idx], config)
        seconds = time.perf_counter() - t0
        cluster = dict(zip(found.rows.tolist(), found.clusters.tolist()))
        eligible = [(a, b) for a, b in pairs if jac(texts[a], texts[b]) >= config.threshold]
        recall = sum(cluster.get(a, a) == cluster.get(b, b) for a, b in eligible) / max(1, len(eligible))
        reported = list(zip(found.rows.tolist(), found.matches.tolist()))
        precision = sum(jac(texts[r], texts[m]) >= config.threshold for r, m in reported) / max(1, len(reported))
        print(f"  {name}: {len(texts):,} rows, {len(pairs)} planted, {len(eligible)} at Jaccard >= "
              f"{config.threshold}: recall {recall:.3f} (>= 0.95), precision {precision:.3f} (>= 0.98), "
              f"{len(reported)} reported, {seconds:.2f} s")


def main() -> None:
    stop_on_sigterm()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tokens", type=int, default=20_000_000)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--vocab-size", type=int, default=8192)
    p.add_argument("--max-seq-len", type=int, default=1024)
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--skip-planted", action="store_true")
    args = p.parse_args()
    if not WIKI.exists():
        sys.exit(f"needs {WIKI}")
    print(f"bench/near_dedup.py  {datetime.now(timezone.utc).isoformat(timespec='seconds')}  load average at start "
          f"{loadavg()}")

    def body(work: Path) -> None:
        corpus, tok_path, copies = prepare_corpus(work, args.tokens, args.vocab_size)
        runs, builder = with_outputs(work, lambda out: run_rounds(args, corpus, tok_path, out))
        report(args, copies, runs, builder)

    in_workdir(args.workdir, "bench-near-dedup-", body)
    if not args.skip_planted:
        planted(args)
    print(f"load average at end {loadavg()}")


if __name__ == "__main__":
    main()
