"""The bits test bed on one device: every arm of specs/ablation_bits.toml, trained, scored, one table.

    python bench/bits_probe.py                          # one CUDA device, the spec as it is (3 seeds)
    python bench/bits_probe.py --seeds 0 --jobs 4       # one seed, four runs at a time on the GPU
    python bench/bits_probe.py --device cpu --tiny      # a scaled-down copy on the CPU (the tests run this)

It derives a spec from ``--spec`` under ``--workdir`` (runs and report there, nothing in the repo):
every run trains on ``--device`` (``[common] train.device``) and is evaluated there
(``[evaluation] device``); ``--tiny`` swaps in a tiny manifest (a 320-token tokenizer, a 2-layer
d_model 32 model, 16 steps, 6 held-out strings) and keeps every arm. Then it runs
``python -m trainer.ablate`` on it, exactly as a person would, and prints one table: per arm,
exact match per question with 95% intervals, the difference from the base arm (the plain
decoder), parameters, training FLOPs and gate μ per question, then the wall time. The full report
(per tier, costs, curves) is ``<workdir>/runs/report/ablation.md``.

Needs only the project's install (no mamba_ssm: the pure-PyTorch path runs on any device). Budget:
on one H100 the 9-12 runs of the spec are small (0.8M parameters, 400 steps of 32 rows), so
start-up and Python overhead dominate; ``--jobs`` runs several at a time on the one device.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TINY_MANIFEST = """# bench/bits_probe.py --tiny: the bits test bed at test size
[run]
name = "tiny-bits"

[data]
tokenizer = "tokenizers/tiny-bits.json"
max_seq_len = 64
train_samples = 64
val_samples = 16
seed = 0
window = 50

[data.tokenizer_train]
vocab_size = 320
synthetic = 120

[[data.sources]]
name = "synthetic:bits"
weight = 1.0
build = { count = 200, tiers = "0-2", val_ratio = 0.1, max_bad_ratio = 0.0 }

[model]
d_model = 32
n_layers = 2
d_state = 8
headdim = 16
chunk_size = 16
d_hrm = 16
hrm_slots = 2
hrm_heads = 2

[train]
batch_size = 4
steps = 16
learning_rate = 0.003
warmup_steps = 2
log_steps = 4
hrm_gate_warmup_steps = 4
gate_ramp_steps = 4
checkpoint_limit = 1
loss_on_prompt = false

[eval]
val_every = 16
eval_batch_size = 8
max_val_samples = 8
"""


def derived_spec(spec: Path, workdir: Path, device: str, tiny: bool, seeds: list[int] | None) -> Path:
    """The spec with its runs under ``workdir``, training and evaluation on ``device``."""
    from trainer.ablate.toml_text import dumps

    doc = tomllib.loads(spec.read_text())
    header = doc["ablation"]
    manifest = (spec.parent / header["manifest"]).resolve()
    if tiny:
        manifest = workdir / "tiny-bits.toml"
        manifest.write_text(TINY_MANIFEST)
        doc["evaluation"].update(limit=6, max_new_tokens=8, batch_size=32)
    header.update(manifest=str(manifest), runs_dir=str(workdir / "runs"))
    if seeds:
        header["seeds"] = seeds
    common = doc.setdefault("common", {})
    common.setdefault("train", {})["device"] = device
    doc["evaluation"]["device"] = device
    path = workdir / "spec.toml"
    path.write_text(dumps(doc, f"derived from {spec} by bench/bits_probe.py"))
    return path


def run(args: argparse.Namespace) -> int:
    from trainer.ablate.report import question_table

    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            print("bits_probe: no CUDA device here; run it on a GPU machine, or pass --device cpu [--tiny]")
            return 2
    workdir = Path(args.workdir).resolve()
    if workdir.exists() and args.fresh:
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    spec = derived_spec(Path(args.spec).resolve(), workdir, args.device, args.tiny,
                        [int(s) for s in args.seeds.split(",")] if args.seeds else None)
    cmd = [sys.executable, "-m", "trainer.ablate", str(spec), "--jobs", str(args.jobs), "--data_dir",
           str(workdir / "data"), "--quiet"]
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-3000:] + done.stderr[-3000:])
        print(f"bits_probe: trainer.ablate failed (exit {done.returncode})")
        return 1
    rep = json.loads((workdir / "runs" / "report" / "ablation.json").read_text())
    import torch

    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else f"cpu ({os.cpu_count()} cores)"
    print(f"bits_probe: {len(rep['arms'])} arms x seeds {rep['seeds']} on {where}, {seconds:.0f} s "
          f"(runs and report: {workdir / 'runs'})")
    print()
    print("\n".join(question_table(rep)))
    if args.json:
        Path(args.json).write_text(json.dumps({"seconds": seconds, "device": where, "report": rep}, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    p.add_argument("--tiny", action="store_true", help="a scaled-down copy: tiny model, 16 steps, 6 strings")
    p.add_argument("--spec", default=str(REPO / "specs" / "ablation_bits.toml"))
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the spec's)")
    p.add_argument("--jobs", type=int, default=None, help="runs at a time (default: 4 on CUDA, 2 on CPU)")
    p.add_argument("--workdir", default=str(REPO / "bench" / "out" / "bits-probe"))
    p.add_argument("--fresh", action="store_true", help="remove --workdir first (else finished runs are reused)")
    p.add_argument("--json", default=None, help="also write the report and timing here")
    args = p.parse_args(argv)
    if args.jobs is None:
        args.jobs = 4 if args.device.startswith("cuda") else 2
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
