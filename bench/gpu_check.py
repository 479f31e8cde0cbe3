"""GPU readiness check: everything the CPU machines could not measure, in one run, one table.

    python bench/gpu_check.py                  # on a CUDA machine, as is (~2-4 min on one GPU)
    python bench/gpu_check.py --install        # first try `pip install mamba-ssm causal-conv1d`
    python bench/gpu_check.py --json out.json  # also write the rows

Rows (each PASS, FAIL or SKIP with the reason):
  mixer path      which path a run takes (trainer.model.kernels.describe_path)
  parity fp32     fused kernels vs pure SSD on the same weights: logits and every gradient,
                  relative error ||a - b|| / ||b|| <= 1e-2 (triton's dots run in TF32)
  parity bf16     the same under bf16 autocast, <= 5e-2
  step bf16       trainer.step.train_step, bf16 autocast, fused AdamW: finite, loss falls
  step fp16       fp16 autocast with the grad scaler: finite, loss falls
  skip on inf     fused AdamW skips a non-finite update on the device (weights, moments, step)
  host syncs      torch.cuda.set_sync_debug_mode("error") around a train step: none
  adamw_8bit      bitsandbytes AdamW8bit on CUDA: finite, loss falls, uint8 moments
  50m throughput  tokens/s and MFU of the 50M preset, bf16 (6 x params x tokens/s / peak)
  nccl 2 ranks    float64 weights after 3 steps on 2 GPUs vs one process: max |diff| <= 1e-12
                  (SKIP with the reason on one GPU)

Exit status: 1 when a row FAILs (a parity failure among them), else 0; on a machine without
CUDA every row is SKIP ("no CUDA device") and the status is 0. Record results in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.data import Batch  # noqa: E402
from trainer.distributed import World  # noqa: E402
from trainer.model import HRMMamba2LM, ModelConfig, kernels  # noqa: E402
from trainer.optim import build_optimizer  # noqa: E402
from trainer.step import train_step  # noqa: E402

PARITY_TOL = {"fp32": 1e-2, "bf16": 5e-2}
NCCL_BOUND = 1e-12
PEAK_BF16_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "L4": 121.0, "A10": 125.0,
                    "4090": 165.0, "3090": 71.0}  # dense bf16, by a substring of the device name
ROWS = ("mixer path", "parity fp32", "parity bf16", "step bf16", "step fp16", "skip on inf", "host syncs",
        "adamw_8bit", "50m throughput", "nccl 2 ranks")


@dataclass
class Row:
    name: str
    status: str  # PASS | FAIL | SKIP | INFO
    detail: str


# -- inputs ---------------------------------------------------------------------------------------

def small_config(**overrides) -> ModelConfig:
    base = dict(d_model=256, n_layers=4, d_state=64, headdim=64, chunk_size=64, d_hrm=128, hrm_slots=4,
                hrm_heads=4, use_halting=True, deep_supervision=True)
    base.update(overrides)
    return ModelConfig(vocab_size=4096, **base)


def make_batch(vocab: int, rows: int, width: int, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, vocab, (rows, width), generator=g)
    prompt_lens = torch.randint(width // 4, width // 2, (rows,), generator=g)
    labels = torch.cat([ids[:, 1:], torch.full((rows, 1), -100)], dim=1)
    return Batch(ids, prompt_lens, labels, [f"r{i}" for i in range(rows)], list(range(rows)), rows * width, rows * width)


def build(cfg: ModelConfig, device, dtype=torch.float32, seed: int = 0) -> HRMMamba2LM:
    torch.manual_seed(seed)
    model = HRMMamba2LM(cfg).to(device=device, dtype=dtype)
    with torch.no_grad():  # an open bridge, as after training: the HRM then reaches the loss
        model.bridge.memory_proj.weight.normal_(0.0, 0.02)
    return model.train()


def autocast_for(precision: str):
    if precision == "fp32":
        return nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return lambda: torch.autocast("cuda", dtype=dtype)


# -- checks ---------------------------------------------------------------------------------------

def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


def set_kernels(model: HRMMamba2LM, on: bool) -> None:
    for layer in model.decoder.layers:
        layer.mixer.use_kernels = on


def forward_backward(model, batch: Batch, device, precision: str):
    model.zero_grad(set_to_none=True)
    with autocast_for(precision)():
        out = model(batch.input_ids.to(device), batch.prompt_lens, batch.labels.to(device), gate_scale=1.0)
    out.loss.backward()
    grads = {n: p.grad.detach().float().clone() for n, p in model.named_parameters() if p.grad is not None}
    return out.logits.detach().float(), grads


def parity_row(precision: str, device) -> Row:
    """Fused against pure on the same weights; FAIL (and exit 1) above the stated tolerance."""
    name, tol = f"parity {precision}", PARITY_TOL[precision]
    if not kernels.kernels_available():
        return Row(name, "SKIP", kernels.status()[1])
    model = build(small_config(), device)
    batch = make_batch(4096, 4, 256)
    set_kernels(model, True)
    fused_logits, fused_grads = forward_backward(model, batch, device, precision)
    set_kernels(model, False)
    pure_logits, pure_grads = forward_backward(model, batch, device, precision)
    if fused_grads.keys() != pure_grads.keys():
        return Row(name, "FAIL", f"different parameters got gradients: {sorted(fused_grads.keys() ^ pure_grads.keys())[:3]}")
    logit_err = relative(fused_logits, pure_logits)
    worst, worst_name = max((relative(fused_grads[n], pure_grads[n]), n) for n in pure_grads)
    ok = logit_err <= tol and worst <= tol
    return Row(name, "PASS" if ok else "FAIL",
               f"logits {logit_err:.2e}, worst grad {worst:.2e} ({worst_name}); tolerance {tol:g}")


def train_row(name: str, device, precision: str, optimizer: str, steps: int = 4) -> Row:
    if optimizer == "adamw_8bit":
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as exc:
            return Row(name, "SKIP", f"bitsandbytes: {exc}")
    cfg = small_config()
    model = build(cfg, device)
    opt = build_optimizer(model, optimizer, 1e-3, 0.1, fused=optimizer == "adamw")
    scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
    batch = make_batch(cfg.vocab_size, 8, 256)
    losses, skipped = [], []
    for _ in range(steps):
        out, _ = train_step(model, opt, scaler, World(), device, batch, 1e-3, 1.0, 1.0, autocast_for(precision))
        losses.append(out.terms[0])
        skipped.append(out.skipped)
    losses, skipped = torch.stack(losses).tolist(), int(torch.stack(skipped).sum())
    finite = all(map(lambda v: v == v and abs(v) != float("inf"), losses))
    extra = ""
    if optimizer == "adamw_8bit":
        quantised = any(s.get("state1") is not None and s["state1"].dtype == torch.uint8 for s in opt.state.values())
        extra = f", uint8 moments {quantised}"
        finite = finite and quantised
    ok = finite and losses[-1] < losses[0] and (precision == "fp16" or skipped == 0)
    return Row(name, "PASS" if ok else "FAIL",
               f"loss {losses[0]:.4f} -> {losses[-1]:.4f} over {steps} steps, skipped {skipped}{extra}")


def skip_on_inf_row(device) -> Row:
    """Runs on any device (fused AdamW exists on CPU too; tests/trainer/test_gpu_check.py uses it)."""
    model = build(small_config(use_halting=False, deep_supervision=False), device)
    opt = build_optimizer(model, "adamw", 1e-3, 0.1, fused=True)
    batch = make_batch(4096, 4, 128)
    train_step(model, opt, None, World(), device, batch, 1e-3, 1.0, 1.0, nullcontext)  # moments exist
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    steps_before = {id(p): float(s["step"]) for p, s in opt.state.items()}
    # an infinite gradient below the first layer: the norm is non-finite, the update must not happen
    handle = model.decoder.layers[0].register_full_backward_hook(
        lambda _m, grad_in, grad_out: tuple(g * float("inf") if g is not None else g for g in grad_in))
    try:
        out, _ = train_step(model, opt, None, World(), device, batch, 1e-3, 1.0, 1.0, nullcontext)
    finally:
        handle.remove()
    unchanged = all(torch.equal(before[n], p) for n, p in model.named_parameters())
    steps_same = all(float(s["step"]) == steps_before[id(p)] for p, s in opt.state.items())
    ok = bool(out.skipped) and unchanged and steps_same
    return Row("skip on inf", "PASS" if ok else "FAIL",
               f"skipped {bool(out.skipped)}, weights unchanged {unchanged}, step counts unchanged {steps_same}")


def host_sync_row(device) -> Row:
    model = build(small_config(), device)
    opt = build_optimizer(model, "adamw", 1e-3, 0.1, fused=True)
    batch = make_batch(4096, 8, 256)
    autocast = autocast_for("bf16")
    train_step(model, opt, None, World(), device, batch, 1e-3, 1.0, 1.0, autocast)  # lazy inits
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_step(model, opt, None, World(), device, batch, 1e-3, 1.0, 1.0, autocast)
    except RuntimeError as exc:
        return Row("host syncs", "FAIL", f"a step synchronised the host: {str(exc).splitlines()[0][:140]}")
    finally:
        torch.cuda.set_sync_debug_mode(0)
    return Row("host syncs", "PASS", "none in a bf16 train step with fused AdamW (halting and deep supervision on)")


def throughput_row(device, steps: int) -> Row:
    cfg = ModelConfig.size_50m(vocab_size=32000)
    model = build(cfg, device)
    opt = build_optimizer(model, "adamw", 3e-4, 0.1, fused=True)
    batch = make_batch(cfg.vocab_size, 16, 512)
    autocast = autocast_for("bf16")
    for _ in range(2):
        train_step(model, opt, None, World(), device, batch, 3e-4, 1.0, 1.0, autocast)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(model, opt, None, World(), device, batch, 3e-4, 1.0, 1.0, autocast)
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - t0) / steps
    tokens_per_s = batch.tokens / seconds
    params = sum(p.numel() for p in model.parameters())
    name = torch.cuda.get_device_name(device)
    peak = next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    mfu = f", MFU {6 * params * tokens_per_s / (peak * 1e12):.3f} of {peak:g} TFLOP/s" if peak else ", MFU: peak unknown"
    return Row("50m throughput", "INFO", f"{params / 1e6:.1f}M params, batch 16 x 512, {tokens_per_s:,.0f} tok/s"
               f" ({kernels.describe_path(cfg, device)}){mfu}")


# -- nccl: two processes ---------------------------------------------------------------------------

def nccl_worker(rank: int, world_size: int, port: int, out: str) -> None:
    import torch.distributed as torch_dist

    torch.cuda.set_device(rank)
    torch_dist.init_process_group("nccl", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    torch.save(nccl_train(World(rank, world_size, rank), torch.device("cuda", rank)), out + f".{rank}")
    torch_dist.destroy_process_group()


def nccl_train(world: World, device) -> dict:
    """float64 (the pure path), so two ranks and one process differ by summation order only."""
    model = build(small_config(d_model=64, n_layers=2, d_state=16, headdim=16, d_hrm=32), device, torch.float64)
    opt = build_optimizer(model, "adamw", 1e-2, 0.1)
    full = make_batch(4096, 8, 64)
    keep = list(range(world.rank, 8, world.world_size))
    batch = Batch(full.input_ids[keep], full.prompt_lens[keep], full.labels[keep], [full.ids[i] for i in keep], keep,
                  len(keep) * 64, len(keep) * 64)
    for step in range(3):
        train_step(model, opt, None, world, device, batch, 1e-2, 0.0 if step == 0 else 1.0, 1.0, nullcontext)
    return {k: v.cpu() for k, v in model.state_dict().items()}


def nccl_row() -> Row:
    if torch.cuda.device_count() < 2:
        return Row("nccl 2 ranks", "SKIP", f"{torch.cuda.device_count()} GPU here; needs 2")
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tempfile.mktemp(prefix="gpu-check-nccl-")
    mp.spawn(nccl_worker, args=(2, port, out), nprocs=2, join=True)
    ranks = torch.load(out + ".0")
    single = nccl_train(World(), torch.device("cuda", 0))
    worst = max((ranks[k].double() - single[k].double()).abs().max().item() for k in single)
    return Row("nccl 2 ranks", "PASS" if worst <= NCCL_BOUND else "FAIL",
               f"max |weight diff| vs one process after 3 steps (1 closed, 2 open): {worst:.2e}; bound {NCCL_BOUND:g}")


# -- driver ----------------------------------------------------------------------------------------

def install() -> str:
    cmd = [sys.executable, "-m", "pip", "install", "-q", "mamba-ssm>=2.2", "causal-conv1d>=1.4", "--no-build-isolation"]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return "pip install timed out after 300 s"
    kernels.status.cache_clear()
    return "installed" if done.returncode == 0 else f"pip install failed: {done.stderr.strip().splitlines()[-1:]}"


def guarded(name: str, fn, *args) -> Row:
    try:
        return fn(*args)
    except Exception as exc:  # noqa: BLE001 - a crash is a FAIL row, the other rows still run
        return Row(name, "FAIL", f"{type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}")


def run_checks(args) -> list[Row]:
    if not torch.cuda.is_available():
        return [Row(name, "SKIP", "no CUDA device (torch.cuda.is_available() is False)") for name in ROWS]
    device = torch.device("cuda", 0)
    torch.backends.cuda.matmul.allow_tf32 = False  # the pure path's reference numbers
    rows = []
    if args.install and not kernels.kernels_available():
        rows.append(Row("install", "INFO", install()))
    rows.append(guarded("mixer path", lambda: Row("mixer path", "INFO", kernels.describe_path(small_config(), device))))
    rows.append(guarded("parity fp32", parity_row, "fp32", device))
    rows.append(guarded("parity bf16", parity_row, "bf16", device))
    rows.append(guarded("step bf16", train_row, "step bf16", device, "bf16", "adamw"))
    # fp16: the grad scaler starts at 2^16 and skips the first overflowing steps, hence more steps
    rows.append(guarded("step fp16", train_row, "step fp16", device, "fp16", "adamw", 8))
    rows.append(guarded("skip on inf", skip_on_inf_row, device))
    rows.append(guarded("host syncs", host_sync_row, device))
    rows.append(guarded("adamw_8bit", train_row, "adamw_8bit", device, "bf16", "adamw_8bit"))
    rows.append(guarded("50m throughput", throughput_row, device, args.steps))
    rows.append(guarded("nccl 2 ranks", nccl_row))
    return rows


def table(rows: list[Row], header: str) -> str:
    width = max(len(r.name) for r in rows)
    lines = [header, f"{'check':<{width}}  status  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{r.name:<{width}}  {r.status:<6}  {r.detail}" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--install", action="store_true", help="pip install mamba-ssm and causal-conv1d first")
    p.add_argument("--steps", type=int, default=10, help="timed steps of the 50m throughput row")
    p.add_argument("--json", type=Path, help="also write the rows here")
    args = p.parse_args(argv)
    started = time.perf_counter()
    rows = run_checks(args)
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    header = (f"gpu_check: {device}, torch {torch.__version__}, {kernels.status()[1]}, "
              f"{time.perf_counter() - started:.0f} s, load {os.getloadavg()[0]:.1f}")
    print(table(rows, header))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"header": header, "rows": [r.__dict__ for r in rows]}, indent=2))
    return 1 if any(r.status == "FAIL" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
