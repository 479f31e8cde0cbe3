"""Evaluation cost on a trained run: the full suite's wall time, and what batching buys.

1. Generation throughput on the same GSM8K-style prompts, interleaved round by round so a busy
   machine slows all alike:
     baseline   model.generate() one prompt at a time (the model's own loop, batch 1)
     batched    trainer.eval.generation.generate_ids, ``--batch-size`` prompts per batch
   -> new tokens/s of each and the batched / baseline ratio (wall clock and process CPU time).
2. The full suite (every suite, no --limit unless given) through the same runner as
   ``python -m trainer.eval``: seconds per suite and in all.

    python bench/eval.py runs/demo --data-dir data                 # both parts
    python bench/eval.py runs/demo --skip-suite --rounds 3         # throughput only
    python bench/eval.py runs/demo --json bench/out/eval.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.eval.generation import generate_ids  # noqa: E402
from trainer.eval.load import load_evaluable  # noqa: E402

PROMPTS = [f"A shop sells {a} pens a day for {b} days. How many pens does it sell?" for a in range(3, 99, 3)
           for b in (2, 5)]


def throughput(ev, n_prompts: int, new_tokens: int, batch_size: int, rounds: int) -> dict:
    prompts = [ev.encode_prompt(p) for p in PROMPTS[:n_prompts]]
    model = ev.model

    def baseline():
        with torch.no_grad():
            for p in prompts:
                model.generate(torch.tensor([p]), new_tokens, gate_scale=ev.gate_scale)

    def batched():
        generate_ids(model, prompts, new_tokens, gate_scale=ev.gate_scale, batch_size=batch_size)

    times: dict[str, list[tuple[float, float]]] = {"baseline": [], "batched": []}
    for r in range(rounds):
        order = [("baseline", baseline), ("batched", batched)]
        for name, fn in order[r % 2:] + order[:r % 2]:
            wall, cpu = time.perf_counter(), time.process_time()
            fn()
            times[name].append((time.perf_counter() - wall, time.process_time() - cpu))
    tokens = len(prompts) * new_tokens  # no eos: every prompt gets exactly new_tokens
    out = {}
    for name, ts in times.items():
        wall = statistics.median(t[0] for t in ts)
        cpu = statistics.median(t[1] for t in ts)
        out[name] = {"seconds": wall, "cpu_seconds": cpu, "tokens_per_s": tokens / wall, "tokens_per_cpu_s": tokens / cpu}
    out["ratio_wall"] = out["batched"]["tokens_per_s"] / out["baseline"]["tokens_per_s"]
    out["ratio_cpu"] = out["batched"]["tokens_per_cpu_s"] / out["baseline"]["tokens_per_cpu_s"]
    out.update({"prompts": len(prompts), "new_tokens": new_tokens, "batch_size": batch_size, "rounds": rounds})
    return out


def full_suite(ev, args) -> dict:
    from trainer.eval.runner import run_suites, sources_for, write_results
    from trainer.eval.suites import SUITE_NAMES
    from trainer.eval.suites.base import Options

    sources = sources_for(ev)
    options = Options(limit=args.limit, batch_size=args.batch_size, workers=args.workers)
    doc = run_suites(ev, list(SUITE_NAMES), sources, options, say=lambda m: print("  " + m, flush=True))
    if args.out:
        write_results(doc, Path(args.out), ev.tag)
    return {"seconds": doc["seconds"],
            "suites": {n: {"status": r.status, "seconds": r.seconds, "n": r.metrics.get("n", r.metrics.get("windows")),
                           "reason": r.reason} for n, r in doc["suites"].items()}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", help="run dir, best-model dir or checkpoint")
    p.add_argument("--runs-dir", default="runs")
    p.add_argument("--data-dir", help="data root with the run's catalog")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--limit", type=int, help="items per dataset for the suite run (default: all)")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--new-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--skip-suite", action="store_true")
    p.add_argument("--out", help="also write the suite's results here")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    ev = load_evaluable(args.run, args.runs_dir, args.data_dir)
    params = sum(x.numel() for x in ev.model.parameters())
    host = {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpus": os.cpu_count(), "load_avg": os.getloadavg()[0]}
    print(f"{ev.tag} of {ev.run_dir or ev.path}: step {ev.step}, {params:,} params, {host}")
    result = {"checkpoint": ev.describe(), "host": host}
    t = throughput(ev, args.prompts, args.new_tokens, args.batch_size, args.rounds)
    result["throughput"] = t
    print(f"generation, {t['prompts']} prompts x {t['new_tokens']} new tokens, median of {t['rounds']}:")
    for name in ("baseline", "batched"):
        r = t[name]
        print(f"  {name:<9} {r['tokens_per_s']:8.0f} tok/s wall  {r['tokens_per_cpu_s']:8.0f} tok/s cpu")
    print(f"  batched / baseline: {t['ratio_wall']:.2f}x wall, {t['ratio_cpu']:.2f}x cpu")
    if not args.skip_suite:
        print("full suite:")
        result["suite"] = full_suite(ev, args)
        print(f"  total {result['suite']['seconds']:.1f} s")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
