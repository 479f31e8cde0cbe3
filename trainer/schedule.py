"""Learning-rate and gate schedules: pure functions of the step (nanoGPT style).

Nothing about them is stored in the weights or the optimizer: a checkpoint's step is the
scheduler position, and resuming at step ``s`` gives the same values as never stopping.
"""

from __future__ import annotations

import math


def lr_at(step: int, base_lr: float, total_steps: int, warmup_steps: int = 0,
          scheduler: str = "cosine", min_ratio: float = 0.0) -> float:
    """Learning rate for optimizer step ``step`` (0-based).

    Linear warmup from ``base_lr / warmup_steps`` to ``base_lr`` over ``warmup_steps``, then
    ``cosine`` or ``linear`` decay to ``base_lr * min_ratio`` at ``total_steps``, or ``constant``.
    """
    if warmup_steps > 0 and step < warmup_steps:
        return base_lr * (step + 1) / warmup_steps
    if scheduler == "constant":
        return base_lr
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / decay_steps))
    if scheduler == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    elif scheduler == "linear":
        shape = 1.0 - progress
    else:
        raise ValueError(f"unknown lr_scheduler {scheduler!r} (cosine, linear, constant)")
    return base_lr * (min_ratio + (1.0 - min_ratio) * shape)


def gate_scale(step: int, warmup_steps: int = 0, ramp_steps: int = 0) -> float:
    """HRM gate multiplier: 0 while ``step < warmup_steps``, then 0 -> 1 linearly over
    ``ramp_steps`` (1 at once when ``ramp_steps`` is 0). The first ramp step is already > 0, so
    the gate opens exactly at the end of the warmup."""
    if step < warmup_steps:
        return 0.0
    if ramp_steps <= 0:
        return 1.0
    return min(1.0, (step - warmup_steps + 1) / ramp_steps)
