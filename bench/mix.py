"""Benchmark: build a 5,000,000-position plan over 4 sources, check its shares, time SQL audits.

    python bench/mix.py [--positions 5_000_000] [--window 1000] [--repeat 2] [--workdir bench/out/mix]

Sources (built once into the workdir and reused): wiki (WikiText-2 valid from ../shared/data,
repeated 10× as distinct articles), gsm8k (../shared/data test split), synthetic:arith with a
tier schedule, synthetic:lists; weights 0.90 / 0.05 / 0.03 / 0.02 (the blueprint's ScienceQA
variant proportions). Without ../shared/data, synthetic:word_problems and synthetic:linear stand
in for wiki and gsm8k.

Measures, in the same run:
  * plan build time (resolve, pools, stratify, tiers, rows, Parquet, catalog) vs a naive i.i.d.
    mixer (numpy ``choice`` of source and row per position) over the same pools;
  * realized share per source overall (target ±0.1%) and the worst count error in any window of
    ``--window`` consecutive positions (target ±1), for both;
  * the same plan with ``weight_by = "tokens"``: build time, realized token share per source and
    the worst token error in any window of ``--window`` positions, in rows of max_seq_len tokens
    (bound: max(1, k-1) rows for k sources, docs/mixing.md), next to the sample-weighted plan's;
  * latency of the SQL audit queries (views over the plan Parquet) vs a bare count(*) scan.
Plan builds are timed ``--repeat`` times (median reported, each run listed).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
WIKI = SHARED / "wikitext2" / "valid.txt"
GSM8K = SHARED / "gsm8k" / "test.jsonl"
WEIGHTS = (0.90, 0.05, 0.03, 0.02)
COPY_WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet")


def ensure_bench_root(workdir: Path, max_seq_len: int = 512, quiet: bool = True) -> tuple[Path, list[dict]]:
    """A data root with a tokenizer and the four bench sources (built on first use)."""
    sys.path.insert(0, str(REPO))
    root = workdir / "data"
    tok_path = root / "tokenizers" / "bench-8k.json"
    inputs = workdir / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    have_shared = WIKI.exists() and GSM8K.exists()
    if have_shared:
        wiki_txt = inputs / "wiki10.txt"
        if not wiki_txt.exists():
            lines = WIKI.read_text(encoding="utf-8").splitlines(keepends=True)
            # distinct articles (titles) and distinct text (a copy number per paragraph), so the
            # quality gate's duplicate check sees 10 different corpora: a copy word opens every sentence
            title = re.compile(r"^ ?= (?!=)(.+?) = ?$")
            copies = [(f" = Copy {k} of {title.match(ln.rstrip()).group(1)} =\n" if title.match(ln.rstrip())
                       else f" {COPY_WORDS[k]} {ln.replace(' . ', f' . {COPY_WORDS[k]} ')}")
                      for k in range(10) for ln in lines if ln.strip()]  # blank lines dropped
            wiki_txt.write_text("".join(copies), encoding="utf-8")
        sources = [
            {"name": "wiki", "build": {"from": [str(wiki_txt)], "threads": 2}},
            # GSM8K's test split as training data: a throughput benchmark, never a model
            {"name": "gsm8k", "build": {"from": [str(GSM8K)], "threads": 2, "allow_eval_data": True}},
        ]
    else:
        sources = [
            {"name": "synthetic:word_problems", "build": {"count": 20000, "tiers": "0-3", "max_bad_ratio": 0.2}},
            {"name": "synthetic:linear", "build": {"count": 5000, "tiers": "0-3", "max_bad_ratio": 0.2}},
        ]
    sources += [
        # tiers 1-3 only: tier-0 problems are few enough to trip the quality gate's duplicate check
        {"name": "synthetic:arith", "build": {"count": 9000, "tiers": "1-3", "max_bad_ratio": 0.05},
         "tiers": {"schedule": [{"at": 0.0, "weights": [0.0, 0.6, 0.3, 0.1]},
                                {"at": 0.4, "weights": [0.0, 0.4, 0.3, 0.3]},
                                {"at": 1.0, "weights": [0.0, 0.2, 0.4, 0.4]}]}},
        {"name": "synthetic:lists", "build": {"count": 6000, "tiers": "1-3", "max_bad_ratio": 0.05}},
    ]
    for s, w in zip(sources, WEIGHTS):
        s["weight"] = w
    if not tok_path.exists():
        from corpus.atomic import atomic_path
        from corpus.tokenizer import synthetic_texts, texts_from_file, train_tokenizer

        def texts():
            if have_shared:
                yield from texts_from_file(WIKI, None)
                yield from texts_from_file(GSM8K, None)
            yield from synthetic_texts(6000, 0)

        with atomic_path(tok_path) as tmp:
            train_tokenizer(texts(), 8192).save(str(tmp))
    return root, sources


def write_manifest(path: Path, sources: list[dict], positions: int, val: int, window: int, max_seq_len: int,
                   weight_by: str = "samples") -> Path:
    sys.path.insert(0, str(REPO))
    from tests.mixing.helpers import write_manifest as write

    data = {"tokenizer": "tokenizers/bench-8k.json", "max_seq_len": max_seq_len, "train_samples": positions,
            "val_samples": val, "seed": 0, "window": window, "weight_by": weight_by}
    return write(path, data, sources, run="bench")


def naive_mixer(weights, pools_rows: list[int], n: int, seed: int = 0):
    """What many offline mixers do: i.i.d. source per position, i.i.d. row per draw."""
    rng = np.random.default_rng(seed)
    source = rng.choice(len(weights), size=n, p=np.asarray(weights) / sum(weights)).astype(np.int16)
    rows = np.empty(n, dtype=np.int64)
    for i, r in enumerate(pools_rows):
        mask = source == i
        rows[mask] = rng.integers(0, r, int(mask.sum()))
    return source, rows


def window_error(source: np.ndarray, weights, window: int) -> float:
    """Worst |count - window·w| over every run of ``window`` consecutive positions."""
    worst = 0.0
    w = np.asarray(weights) / sum(weights)
    for i, wi in enumerate(w):
        c = np.concatenate([[0], np.cumsum(source == i)])
        counts = c[window:] - c[:-window]
        worst = max(worst, float(np.abs(counts - window * wi).max()))
    return worst


def token_window_error(source: np.ndarray, n_tokens: np.ndarray, weights, window: int) -> float:
    """Worst |tokens_i - w_i · window tokens| over every run of ``window`` consecutive positions."""
    worst = 0.0
    w = np.asarray(weights) / sum(weights)
    total = np.concatenate([[0], np.cumsum(n_tokens, dtype=np.int64)])
    window_tokens = total[window:] - total[:-window]
    for i, wi in enumerate(w):
        c = np.concatenate([[0], np.cumsum(np.where(source == i, n_tokens, 0), dtype=np.int64)])
        worst = max(worst, float(np.abs(c[window:] - c[:-window] - wi * window_tokens).max()))
    return worst


def plan_columns(train_file: Path, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The plan's source index (in ``names`` order) and delivered tokens per position."""
    import pyarrow.parquet as pq

    plan = pq.read_table(train_file, columns=["source", "n_tokens"])
    column = plan.column("source").combine_chunks()
    to_ours = np.array([names.index(n) for n in column.dictionary.to_pylist()], dtype=np.int16)
    return to_ours[column.indices.to_numpy()], plan.column("n_tokens").to_numpy().astype(np.int64)


def timed_plans(manifest: Path, root: Path, repeat: int, log):
    """``make_plan(force=True)`` ``repeat`` times: the last result and every run's seconds."""
    from corpus.mixing.plan import make_plan

    make_plan(manifest, root, log=log, force=False)  # builds the sources on first use (not timed)
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        result = make_plan(manifest, root, log=log, force=True)
        seconds.append(time.perf_counter() - started)
    return result, seconds


def timed(fn, repeat: int = 5):
    first_t = time.perf_counter()
    result = fn()
    first = time.perf_counter() - first_t
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return result, first, statistics.median(runs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--positions", type=int, default=5_000_000)
    p.add_argument("--val", type=int, default=20_000)
    p.add_argument("--window", type=int, default=1000)
    p.add_argument("--max-seq-len", type=int, default=512)
    p.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "mix")
    p.add_argument("--repeat", type=int, default=2, help="plan builds timed per mode (median reported)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.path.insert(0, str(REPO))
    import duckdb

    root, sources = ensure_bench_root(args.workdir, args.max_seq_len)
    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    manifest = write_manifest(args.workdir / "bench5m.toml", sources, args.positions, args.val, args.window,
                              args.max_seq_len)
    result, runs = timed_plans(manifest, root, args.repeat, log)
    plan_seconds = statistics.median(runs)
    train_file = result.dir / "plan-train.parquet"
    names = [s["name"] for s in sources]
    source, n_tokens = plan_columns(train_file, names)
    share = np.bincount(source, minlength=len(names)) / len(source)
    rel_error = np.abs(share - np.array(WEIGHTS)) / np.array(WEIGHTS)
    ours_window = window_error(source, WEIGHTS, args.window)
    token_share = np.bincount(source, weights=n_tokens, minlength=len(names)) / n_tokens.sum()
    samples_token_window = token_window_error(source, n_tokens, WEIGHTS, args.window)

    by_tokens = write_manifest(args.workdir / "bench5m-tokens.toml", sources, args.positions, args.val, args.window,
                               args.max_seq_len, weight_by="tokens")
    tok_result, tok_runs = timed_plans(by_tokens, root, args.repeat, log)
    tok_source, tok_n = plan_columns(tok_result.dir / "plan-train.parquet", names)
    tok_token_share = np.bincount(tok_source, weights=tok_n, minlength=len(names)) / tok_n.sum()
    tok_window = token_window_error(tok_source, tok_n, WEIGHTS, args.window)
    tokens_mode = {
        "plan": tok_result.id, "plan_build_s": round(statistics.median(tok_runs), 2),
        "plan_build_runs_s": [round(x, 2) for x in tok_runs],
        "token_share": dict(zip(names, tok_token_share.round(6).tolist())),
        "max_abs_token_share_error": float(np.abs(tok_token_share - np.array(WEIGHTS)).max()),
        "max_token_window_error_rows": round(tok_window / args.max_seq_len, 3),
        "bound_rows": max(1, len(names) - 1),
        "samples_mode_max_abs_token_share_error": float(np.abs(token_share - np.array(WEIGHTS)).max()),
        "samples_mode_max_token_window_error_rows": round(samples_token_window / args.max_seq_len, 3),
    }

    rows = [s.rows for s in result.stats["train"]]
    t = time.perf_counter()
    naive_source, _ = naive_mixer(WEIGHTS, rows, args.positions)
    naive_seconds = time.perf_counter() - t
    naive_share = np.bincount(naive_source, minlength=len(names)) / args.positions
    naive_rel = np.abs(naive_share - np.array(WEIGHTS)) / np.array(WEIGHTS)
    naive_window = window_error(naive_source, WEIGHTS, args.window)

    con = duckdb.connect(str(root / "catalog.duckdb"), read_only=True)
    pid = result.id
    queries = {
        "scan: count(*) over the plan file": (f"SELECT count(*) FROM read_parquet('{train_file}')", []),
        "overall share per source (mix_share)": ("SELECT * FROM mix_share WHERE plan = ?", [pid]),
        "worst window error per source (mix_share_window)": (
            "SELECT source, max(abs(error)), count(*) FROM mix_share_window WHERE plan = ? AND split = 'train' "
            "AND window_len = ? GROUP BY source", [pid, args.window]),
        "tier-3 share of arith per window (mix_tier_window)": (
            "SELECT window_idx, share, target_share FROM mix_tier_window WHERE plan = ? AND split = 'train' "
            "AND source = 'synthetic:arith' AND tier = 3 ORDER BY window_idx", [pid]),
        "tier mix per source overall (mix_tier_share)": ("SELECT * FROM mix_tier_share WHERE plan = ?", [pid]),
        "positions 2,500,000..2,500,031 (mix_range)": (
            "SELECT * FROM mix_range(?, 2500000, 2500031)", [pid]),
        "recount windows from raw plan rows vs mix_window_counts": (
            "SELECT count(*) FROM ((SELECT (position // ?)::INTEGER AS w, source, count(*) AS n FROM mix_positions "
            "WHERE plan = ? AND split = 'train' GROUP BY ALL) EXCEPT (SELECT window_idx, source, sum(positions) "
            "FROM mix_window_counts WHERE mix = ? AND split = 'train' GROUP BY ALL))", [args.window, pid, pid]),
    }
    latency = {}
    answers = {}
    for label, (query, params) in queries.items():
        rows_out, first, median = timed(lambda q=query, pr=params: con.execute(q, pr).fetchall())
        latency[label] = {"first_s": round(first, 4), "median_s": round(median, 4), "rows": len(rows_out)}
        answers[label] = rows_out
    con.close()
    sql_window = {r[0]: float(r[1]) for r in answers["worst window error per source (mix_share_window)"]}
    tier3 = answers["tier-3 share of arith per window (mix_tier_window)"]
    scan = latency["scan: count(*) over the plan file"]["median_s"]
    mismatched = answers["recount windows from raw plan rows vs mix_window_counts"][0][0]

    report = {
        "plan": pid, "positions": args.positions, "window": args.window, "sources": dict(zip(names, WEIGHTS)),
        "plan_build_s": round(plan_seconds, 2), "plan_build_runs_s": [round(x, 2) for x in runs],
        "naive_mixer_s": round(naive_seconds, 2),
        "build_vs_naive": round(plan_seconds / naive_seconds, 1),
        "share": dict(zip(names, share.round(6).tolist())),
        "max_rel_share_error": float(rel_error.max()), "naive_max_rel_share_error": float(naive_rel.max()),
        "max_window_error": ours_window, "naive_max_window_error": naive_window,
        "sql_max_window_error_aligned": max(sql_window.values()),
        "tier3_arith_first_last_window": [tier3[0][1:], tier3[-1][1:]],
        "sql": latency, "sql_vs_scan": {k: round(v["median_s"] / scan, 1) for k, v in latency.items()},
        "plan_file_mb": round(train_file.stat().st_size / 2**20, 1),
        "raw_recount_mismatches": mismatched,
        "epochs": {s: round(st.epochs, 2) for s, st in zip(names, result.stats["train"])},
        "weight_by_tokens": tokens_mode, "repeat": args.repeat,
    }
    if args.json:
        print(json.dumps(report, indent=1))
        return
    print(f"plan {pid}: {args.positions:,} positions over {len(names)} sources, window {args.window}")
    print(f"  build (resolve → Parquet → catalog): {plan_seconds:.2f} s (median of {runs_text(runs)})   "
          f"naive i.i.d. mixer: {naive_seconds:.2f} s "
          f"(×{plan_seconds / naive_seconds:.1f})   plan file {report['plan_file_mb']} MB")
    for n, w, s, e in zip(names, WEIGHTS, share, rel_error):
        print(f"  {n:<24} target {w:.4f}  realized {s:.6f}  rel. error {e:.2e}  epochs {report['epochs'][n]}")
    print(f"  worst window error: ours {ours_window:.3f} (SQL, aligned windows: {report['sql_max_window_error_aligned']:.3f})"
          f"   naive {naive_window:.1f}   (target ±1)")
    print(f"  max relative share error: ours {rel_error.max():.2e}   naive {naive_rel.max():.2e}   (target 1e-3)")
    print(f"  tier 3 of synthetic:arith, first window {tier3[0][1]:.3f} (target {tier3[0][2]:.3f}), "
          f"last {tier3[-1][1]:.3f} (target {tier3[-1][2]:.3f})")
    print(f"  raw recount of every window from the plan rows vs the registered counts: {mismatched} mismatches")
    t = tokens_mode
    print(f"weight_by = \"tokens\": plan {t['plan']}: build {t['plan_build_s']:.2f} s (median of "
          f"{runs_text(tok_runs)}, ×{t['plan_build_s'] / plan_seconds:.2f} the sample-weighted build)")
    for n, w, s_ in zip(names, WEIGHTS, tok_token_share):
        print(f"  {n:<24} target token share {w:.4f}  realized {s_:.6f}")
    print(f"  worst token error in any {args.window} consecutive positions: {t['max_token_window_error_rows']:.3f} "
          f"rows of {args.max_seq_len} tokens (bound {t['bound_rows']})   sample-weighted plan: "
          f"{t['samples_mode_max_token_window_error_rows']:.3f} rows, token shares off by up to "
          f"{t['samples_mode_max_abs_token_share_error']:.3f}")
    print("  SQL audit latency (first / median of 5, and median vs a bare scan):")
    for label, v in latency.items():
        print(f"    {label:<58} {v['first_s'] * 1000:7.1f} ms / {v['median_s'] * 1000:7.1f} ms  "
              f"×{report['sql_vs_scan'][label]:.1f}  ({v['rows']} rows)")


def runs_text(runs: list[float]) -> str:
    return ", ".join(f"{x:.2f}" for x in runs) + " s"


if __name__ == "__main__":
    main()
