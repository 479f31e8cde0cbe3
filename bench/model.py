"""Training-step throughput of the HRM x Mamba2 model (fwd + bwd tokens/s).

For each size it times, interleaved round by round (rotating which runs first) so that a busy
machine slows all alike, in wall-clock and in process CPU time (the steadier figure on a shared
machine; with --threads 1 it is single-core throughput):
  ours-hrm   HRMMamba2LM with the HRM on (gate open, default cycles; halting/DS as flagged)
  ours-plain the same decoder with hrm_enabled=False            -> HRM overhead ratio
  hf         transformers' Mamba2ForCausalLM, same sizes, its pure-PyTorch path on CPU
             (optional: needs the `bench` extra)                 -> ours-plain / hf ratio
and reports the median step time, tokens/s and the ratios. On CUDA it also reports MFU
(6 * params * tokens/s over the peak given by --peak-tflops) and checks the mamba_ssm path
against the pure path when mamba_ssm is installed.

    python bench/model.py                       # demo and 50m sizes on CPU
    python bench/model.py --sizes demo --steps 5 --json bench/out/model.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from trainer.model import HRMMamba2LM, ModelConfig  # noqa: E402
from trainer.model import kernels  # noqa: E402

SIZES = {
    # name: (config factory, batch, seq_len)
    "demo": (lambda: ModelConfig.demo(vocab_size=4096), 16, 128),
    "50m": (lambda: ModelConfig.size_50m(vocab_size=32000), 2, 256),
}


def hf_model(cfg: ModelConfig):
    """transformers' Mamba2ForCausalLM with our sizes, or None when transformers is missing."""
    try:
        from transformers import Mamba2Config, Mamba2ForCausalLM
    except ImportError:
        return None
    hf_cfg = Mamba2Config(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
        state_size=cfg.d_state, expand=cfg.expand, head_dim=cfg.headdim, num_heads=cfg.n_heads,
        n_groups=cfg.ngroups, conv_kernel=cfg.d_conv, chunk_size=cfg.chunk_size,
        layer_norm_epsilon=cfg.norm_eps, tie_word_embeddings=cfg.tie_embeddings,
        use_bias=False, use_conv_bias=True, residual_in_fp32=True, use_cache=False,
        pad_token_id=0, bos_token_id=0, eos_token_id=0)
    return Mamba2ForCausalLM(hf_cfg)


def make_step(name: str, model, ids, prompt_lens, labels, amp: bool):
    device_type = ids.device.type

    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(device_type, dtype=torch.bfloat16, enabled=amp):
            if name == "hf":
                loss = model(input_ids=ids, labels=ids).loss  # HF shifts the labels itself
            else:
                loss = model(ids, prompt_lens, labels, gate_scale=1.0).loss
        loss.backward()
        if ids.is_cuda:
            torch.cuda.synchronize()
        return float(loss.detach())
    return step


def bench_size(size: str, args) -> dict:
    make_cfg, batch, seq_len = SIZES[size]
    batch, seq_len = args.batch or batch, args.seq_len or seq_len
    device = torch.device(args.device)
    cfg = make_cfg()
    cfg.use_halting, cfg.deep_supervision = args.halting, args.deep_supervision
    torch.manual_seed(0)
    models = {"ours-hrm": HRMMamba2LM(cfg),
              "ours-plain": HRMMamba2LM(ModelConfig(**{**asdict(cfg), "hrm_enabled": False}))}
    with torch.no_grad():  # an open bridge: a trained model's memory is not zero
        models["ours-hrm"].bridge.memory_proj.weight.normal_(0.0, 0.02)
    if not args.no_hf:
        hf = hf_model(cfg)
        if hf is not None:
            models["hf"] = hf
    for m in models.values():
        m.to(device).train()

    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, cfg.vocab_size, (batch, seq_len), generator=g).to(device)
    prompt_lens = torch.full((batch,), seq_len // 2, device=device)
    labels = torch.cat([ids[:, 1:], torch.full((batch, 1), -100, device=device)], dim=1)
    steps = {k: make_step(k, m, ids, prompt_lens, labels, args.bf16) for k, m in models.items()}

    for _ in range(args.warmup):
        for step in steps.values():
            step()
    times = {k: [] for k in steps}
    cpu_times = {k: [] for k in steps}
    names = list(steps)
    for r in range(args.steps):
        # interleaved so contention hits every model in each round, and rotated so that no model
        # always runs first (the first one pays the page faults of the previous one's frees)
        for k in names[r % len(names):] + names[:r % len(names)]:
            step = steps[k]
            t0, c0 = time.perf_counter(), time.process_time()
            step()
            times[k].append(time.perf_counter() - t0)
            cpu_times[k].append(time.process_time() - c0)

    tokens = batch * seq_len
    result = {"size": size, "batch": batch, "seq_len": seq_len, "models": {}}
    for k, m in models.items():
        params = sum(p.numel() for p in m.parameters())
        median = statistics.median(times[k])
        cpu_median = statistics.median(cpu_times[k])
        entry = {"params": params, "step_s": median, "tokens_per_s": tokens / median,
                 "cpu_s_per_step": cpu_median, "tokens_per_cpu_s": tokens / cpu_median}
        if device.type == "cuda" and args.peak_tflops:
            entry["mfu"] = 6 * params * tokens / median / (args.peak_tflops * 1e12)
        result["models"][k] = entry
    ms = result["models"]
    result["hrm_overhead"] = ms["ours-hrm"]["step_s"] / ms["ours-plain"]["step_s"]
    result["hrm_overhead_cpu"] = ms["ours-hrm"]["cpu_s_per_step"] / ms["ours-plain"]["cpu_s_per_step"]
    if "hf" in ms:
        result["plain_vs_hf"] = ms["ours-plain"]["tokens_per_s"] / ms["hf"]["tokens_per_s"]
        result["hrm_vs_hf"] = ms["ours-hrm"]["tokens_per_s"] / ms["hf"]["tokens_per_s"]
        result["plain_vs_hf_cpu"] = ms["ours-plain"]["tokens_per_cpu_s"] / ms["hf"]["tokens_per_cpu_s"]
        result["hrm_vs_hf_cpu"] = ms["ours-hrm"]["tokens_per_cpu_s"] / ms["hf"]["tokens_per_cpu_s"]
    if device.type == "cuda":
        result["kernel_check"] = check_kernel_path(models["ours-plain"], ids, prompt_lens)
    return result


def check_kernel_path(model, ids, prompt_lens) -> dict:
    """mamba_ssm fused path against the pure path on the same weights (CUDA only)."""
    if not kernels.kernels_available():
        return {"checked": False, "reason": "mamba_ssm not importable"}
    with torch.no_grad():
        model.cfg.use_kernels = True
        for layer in model.decoder.layers:
            layer.mixer.use_kernels = True
        fused = model(ids, prompt_lens).logits.float()
        for layer in model.decoder.layers:
            layer.mixer.use_kernels = False
        pure = model(ids, prompt_lens).logits.float()
        for layer in model.decoder.layers:
            layer.mixer.use_kernels = True
    diff = (fused - pure).abs().max().item()
    return {"checked": True, "max_abs_logit_diff": diff, "pure_logit_scale": pure.abs().max().item()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="demo,50m", help="comma list of: " + ", ".join(SIZES))
    p.add_argument("--steps", type=int, default=5, help="timed rounds (median reported)")
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--batch", type=int, default=0, help="override the size's batch")
    p.add_argument("--seq-len", type=int, default=0, help="override the size's sequence length")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0 = torch default)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast")
    p.add_argument("--halting", action="store_true", help="use_halting on for ours-hrm")
    p.add_argument("--deep-supervision", action="store_true", help="deep supervision on")
    p.add_argument("--no-hf", action="store_true", help="skip the transformers baseline")
    p.add_argument("--peak-tflops", type=float, default=0.0, help="device peak for MFU (CUDA)")
    p.add_argument("--json", type=Path, help="also write the results here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    env = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": args.device,
           "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
           "load_avg": os.getloadavg()[0], "bf16": args.bf16}
    try:
        import transformers
        env["transformers"] = transformers.__version__
    except ImportError:
        env["transformers"] = None
    results = {"env": env, "sizes": []}
    print(json.dumps(env))
    for size in args.sizes.split(","):
        r = bench_size(size.strip(), args)
        results["sizes"].append(r)
        print(f"\n[{size}] batch {r['batch']} x seq {r['seq_len']}")
        for k, m in r["models"].items():
            extra = f"  mfu {m['mfu']:.3f}" if "mfu" in m else ""
            print(f"  {k:<11} {m['params'] / 1e6:7.2f}M params  {m['step_s']:7.3f} s/step  "
                  f"{m['tokens_per_s']:9.0f} tok/s  | cpu {m['cpu_s_per_step']:.3f} s/step "
                  f"{m['tokens_per_cpu_s']:7.0f} tok/cpu-s{extra}")
        print(f"  HRM overhead (hrm / plain step time): {r['hrm_overhead']:.3f}x wall, "
              f"{r['hrm_overhead_cpu']:.3f}x cpu  (target <= 1.3)")
        if "plain_vs_hf" in r:
            print(f"  ours / hf tokens/s: plain {r['plain_vs_hf']:.2f}x, hrm {r['hrm_vs_hf']:.2f}x wall; "
                  f"plain {r['plain_vs_hf_cpu']:.2f}x, hrm {r['hrm_vs_hf_cpu']:.2f}x cpu  (target >= 1.0)")
        if "kernel_check" in r:
            print(f"  kernel check: {r['kernel_check']}")
    results["env"]["load_avg_end"] = os.getloadavg()[0]
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
