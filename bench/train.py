"""Benchmark: trainer tokens/s on a manifest's config vs the loader's tokens/s, in the same run.

    python bench/train.py [manifests/demo.toml] [--data-dir DIR] [--steps 20] [--loader-batches 200]
                          [--workers N] [--threads N]

Opens (or builds) the manifest's plan, then measures, on the same batches:

  * loader: ``TrainStream`` (plan positions → reader → length bucketing → padded tensors) with
    ``dataset_workers`` processes, real (unpadded) tokens per second; and two baselines from the
    same run: plan order without bucketing (``bucket_batches = 1``: its padding fraction) and
    the loader read in-process (``workers = 0``);
  * trainer: ``Session.train_step`` (forward, backward, clip, AdamW step) of the manifest's model,
    on batches already in memory, real tokens per second.

The loader must deliver at least 20x what the model consumes (PASS/FAIL). Results also go to
``bench/out/train.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def measure_loader(data, workers: int, batches: int, bucket_batches: int | None = None) -> dict:
    from dataclasses import replace

    from trainer.data import TrainStream

    spec = data.spec() if bucket_batches is None else replace(data.spec(), bucket_batches=bucket_batches)
    opened = time.perf_counter()
    stream = TrainStream(spec, 0, batches + 1, workers)
    first = stream.next_batch()  # start-up: worker spawn, plan opening (catalog, shard ids)
    started = time.perf_counter()
    tokens, padded = first.tokens, first.padded
    for _ in range(batches):
        b = stream.next_batch()
        tokens, padded = tokens + b.tokens, padded + b.padded
    seconds = time.perf_counter() - started
    stream.close()
    return {"workers": workers, "bucket_batches": spec.bucket_batches, "batches": batches, "seconds": seconds,
            "startup_s": started - opened, "tokens_per_s": (tokens - first.tokens) / seconds,
            "pad_frac": 1 - tokens / padded}


def measure_trainer(cfg, data, steps: int) -> dict:
    import torch

    from trainer.checkpoint import Checkpoints
    from trainer.config import build_model_config
    from trainer.distributed import World
    from trainer.metrics import MetricsLog
    from trainer.model import HRMMamba2LM
    from trainer.optim import build_optimizer
    from trainer.session import Session

    t = cfg.train
    torch.manual_seed(t.seed)
    model = HRMMamba2LM(build_model_config(cfg.model, data.tokenizer.vocab_size))
    optimizer = build_optimizer(model, t.optimizer, t.learning_rate, t.weight_decay, (t.beta1, t.beta2))
    scratch = Path(tempfile.mkdtemp(prefix="bench-train-"))
    s = Session(cfg, World(), torch.device("cpu"), data.plan, data, model, optimizer, None, Checkpoints(scratch),
                MetricsLog(scratch / "m.jsonl", enabled=False), None, steps)
    stream = data.train_stream(0, steps + 2)
    batches = [stream.next_batch() for _ in range(steps + 2)]
    stream.close()
    for b in batches[:2]:  # warm-up: allocator, first-call overheads
        s.train_step(b, t.learning_rate, 1.0)
    started = time.perf_counter()
    tokens = 0
    for b in batches[2:]:
        s.train_step(b, t.learning_rate, 1.0)
        tokens += b.tokens
    seconds = time.perf_counter() - started
    return {"steps": steps, "seconds": seconds, "tokens_per_s": tokens / seconds,
            "params": sum(p.numel() for p in model.parameters()), "batch_size": t.batch_size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("manifest", nargs="?", default=str(REPO / "manifests" / "demo.toml"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--steps", type=int, default=20, help="timed training steps")
    p.add_argument("--loader-batches", type=int, default=400)
    p.add_argument("--workers", type=int, default=None, help="loader processes (default: the manifest's, at least 1)")
    p.add_argument("--threads", type=int, default=None, help="torch threads for the model")
    args = p.parse_args(argv)

    import torch

    from trainer.config import load_config, parse_command_line
    from trainer.data import RunData
    from trainer.distributed import World

    if args.threads:
        torch.set_num_threads(args.threads)
    flags = ["--data_dir", args.data_dir] if args.data_dir else []
    cfg = load_config(parse_command_line([args.manifest, *flags]))
    data = RunData.open(cfg, World())
    workers = args.workers if args.workers is not None else max(1, cfg.train.dataset_workers)

    loader = measure_loader(data, workers, args.loader_batches)
    in_process = measure_loader(data, 0, args.loader_batches)
    plain = measure_loader(data, 0, args.loader_batches, bucket_batches=1)
    trainer = measure_trainer(cfg, data, args.steps)
    ratio = loader["tokens_per_s"] / trainer["tokens_per_s"]
    verdict = "PASS" if ratio >= 20 else "FAIL"

    print(f"manifest {args.manifest}  plan {data.plan.id}  model {trainer['params'] / 1e6:.2f}M params  "
          f"batch {trainer['batch_size']}  torch threads {torch.get_num_threads()}")
    print(f"{'what':<44}{'tokens/s':>14}{'pad':>8}{'start-up':>10}")
    print(f"{'trainer (forward+backward+step)':<44}{trainer['tokens_per_s']:>14,.0f}")
    print(f"{f'loader, {workers} worker(s), bucketed':<44}{loader['tokens_per_s']:>14,.0f}{loader['pad_frac']:>8.1%}{loader['startup_s']:>9.2f}s")
    print(f"{'loader, in-process, bucketed':<44}{in_process['tokens_per_s']:>14,.0f}{in_process['pad_frac']:>8.1%}{in_process['startup_s']:>9.2f}s")
    print(f"{'loader, in-process, plan order (baseline)':<44}{plain['tokens_per_s']:>14,.0f}{plain['pad_frac']:>8.1%}{plain['startup_s']:>9.2f}s")
    print(f"loader / trainer = {ratio:,.1f}x (need >= 20x): {verdict}")
    print(f"padding: bucketed / plan order = {loader['pad_frac'] / max(plain['pad_frac'], 1e-9):.2f}")
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps({"manifest": args.manifest, "plan": data.plan.id, "trainer": trainer,
                                                "loader": loader, "loader_in_process": in_process,
                                                "loader_plan_order": plain, "ratio": ratio}, indent=2))
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
