"""Optimizers: AdamW, or bitsandbytes' 8-bit AdamW (imported only when asked for).

Matrices are decayed; vectors (norms, biases, gains, SSM ``A``/``D``/``dt``) are not, as in
nanoGPT. The 8-bit variant keeps its moments block-quantised, which is why the blueprint uses
it: at 50M+ parameters optimizer memory dominates.
"""

from __future__ import annotations

import torch

from corpus.errors import UserError


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    decay, no_decay = [], []
    for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]):
        if p.requires_grad:
            (decay if p.dim() >= 2 else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, name: str, lr: float, weight_decay: float,
                    betas: tuple[float, float] = (0.9, 0.95), fused: bool = False) -> torch.optim.Optimizer:
    """``fused`` (the trainer's choice on CUDA): torch's fused AdamW, which also skips a
    non-finite update on the device (trainer/step.py) instead of syncing the host."""
    groups = param_groups(model, weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, betas=betas, eps=1e-8, fused=fused or None)
    if name == "adamw_8bit":
        try:
            bnb = import_bitsandbytes()
        except ImportError as exc:
            raise UserError(f"optimizer adamw_8bit needs bitsandbytes ({exc}); pip install bitsandbytes") from None
        return bnb.optim.AdamW8bit(groups, lr=lr, betas=betas, eps=1e-8)
    raise UserError(f"unknown optimizer {name!r} (adamw, adamw_8bit)")


def import_bitsandbytes():
    """bitsandbytes, without its import-time hub lookup of a kernel the 8-bit AdamW never calls.

    On CPUs with AVX512-BF16, importing bitsandbytes tries to fetch a 4-bit GEMM kernel from the
    hub through the optional ``kernels`` package, and warns ``Failed to load CPU gemm_4bit_forward
    ... No module named 'kernels'`` when it cannot, on every adamw_8bit run. 4-bit matmuls are for
    quantized inference; the optimizer does not use them, so the lookup is switched off (no hub
    access) and its one warning silenced."""
    import importlib
    import logging
    import sys

    block = "kernels" not in sys.modules
    if block:
        sys.modules["kernels"] = None  # ``from kernels import get_kernel`` raises ImportError
    log = logging.getLogger("bitsandbytes.backends.cpu.ops")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        return importlib.import_module("bitsandbytes")
    finally:
        log.setLevel(level)
        if block and sys.modules.get("kernels") is None:
            sys.modules.pop("kernels", None)


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
