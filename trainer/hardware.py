"""What this machine's CPU does natively, so a run can say when a setting will be slow here."""

from __future__ import annotations

import torch


def cpu_has_native_bf16() -> bool:
    """True when the CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16).

    Without either, bf16 autocast on a CPU converts every operand and runs the matmuls and
    convolutions an order of magnitude slower than fp32 (measured: 10x on this AVX2 machine)."""
    caps = torch.cpu.get_capabilities()
    return bool(caps.get("avx512_bf16") or caps.get("amx_bf16"))


def runs_on_cpu(device: str) -> bool:
    """Whether a ``[train].device`` setting resolves to the CPU on this machine."""
    return device == "cpu" or (device == "auto" and not torch.cuda.is_available())
