"""Learning-rate and gate schedules: pure functions of the step (nanoGPT style).

Nothing about them is stored in the weights or the optimizer: a checkpoint's step is the
scheduler position, and resuming at step ``s`` gives the same values as never stopping.
"""

from __future__ import annotations

import math


def lr_at(step: int, base_lr: float, total_steps: int, warmup_steps: int = 0,
          scheduler: str = "cosine", min_ratio: float = 0.0) -> float:
    """Learning rate for optimizer step ``step`` (0-based; a run takes steps 0 .. total_steps - 1).

    Linear warmup from ``base_lr / warmup_steps`` at step 0 to ``base_lr`` at step
    ``warmup_steps - 1``, the one peak step (step 0 without warmup); then ``cosine`` or ``linear``
    decay that reaches ``base_lr * min_ratio`` exactly at the last step, ``total_steps - 1``, and
    stays there; or ``constant``. The edges are returned as written, not as the end points of a
    floating-point formula, so the peak is hit at exactly one step and the end is the minimum.
    """
    if scheduler not in ("cosine", "linear", "constant"):
        raise ValueError(f"unknown lr_scheduler {scheduler!r} (cosine, linear, constant)")
    peak = max(0, warmup_steps - 1)
    if step < peak:
        return base_lr * (step + 1) / warmup_steps
    last = total_steps - 1
    if scheduler == "constant" or step == peak:
        return base_lr
    if step >= last:
        return base_lr * min_ratio
    progress = (step - peak) / (last - peak)  # in (0, 1) strictly here
    if scheduler == "cosine":
        shape = 0.5 * (1.0 + math.cos(math.pi * progress))
    else:
        shape = 1.0 - progress
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
