"""Parameters and training FLOPs per run, so "equal compute" is shown rather than assumed.

FLOPs are counted, not estimated from a formula: torch's FLOP formulas
(``torch.utils.flop_counter.flop_registry``, the ones ``FlopCounterMode`` uses) applied to every
operator dispatched during one forward + backward of a batch of the run's size and mean row length (real tokens seen /
samples seen), once with the gate shut (the HRM runs without grad, its memory is not added) and
once open. Training FLOPs = shut steps x the first + open steps x the second (the ramp counts as
open). The formulas cover matrix products and convolutions, which is nearly all of the work.
``FlopCounterMode`` itself cannot be used: its module tracker asserts on the HRM's no-grad updates.
"""

from __future__ import annotations

import torch
from torch.utils._python_dispatch import TorchDispatchMode


class _CountFlops(TorchDispatchMode):
    """Sums torch's registered FLOP formula of every operator that runs under it."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        from torch.utils.flop_counter import flop_registry

        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def parameter_counts(model) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    hrm = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("pool.", "core.", "bridge.", "halting.")))
    return {"params": total, "hrm_params": hrm}


def step_flops(model, batch_size: int, length: int, gate_scale: float) -> int:
    """FLOPs of one training step's forward + backward on a (batch_size, length) batch."""
    g = torch.Generator().manual_seed(0)
    device = next(model.parameters()).device  # evaluation may run on a GPU (spec [evaluation] device)
    ids = torch.randint(3, model.cfg.vocab_size, (batch_size, length), generator=g).to(device)
    prompt_lens = torch.full((batch_size,), max(1, length // 4), dtype=torch.long)
    was_training = model.training
    model.train()
    counter = _CountFlops()
    with counter:
        out = model(ids, prompt_lens, ids.clone(), gate_scale=gate_scale)
        out.loss.backward()
    model.zero_grad(set_to_none=True)
    model.train(was_training)
    return counter.total


def training_flops(model, batch_size: int, mean_length: float, steps: int, warmup_steps: int) -> dict[str, float]:
    length = max(2, round(mean_length))
    shut = min(steps, warmup_steps) if model.cfg.hrm_enabled else 0
    f_open = step_flops(model, batch_size, length, 1.0)
    f_shut = step_flops(model, batch_size, length, 0.0) if shut else 0
    return {"flops_per_step": f_open, "train_flops": float(shut * f_shut + (steps - shut) * f_open),
            "mean_row_tokens": mean_length}
