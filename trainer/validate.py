"""Validation loss and early stopping.

Patience counts *consecutive increases* of the validation loss (each evaluation compared with
the one before), and only for evaluations after ``patience_grace_steps``: early in a run the
loss is noisy and a gate opening can bump it. The state is plain numbers saved in every
checkpoint, so a resumed run stops exactly where an uninterrupted one would.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterable

import torch


@dataclass
class Patience:
    patience: int = 0  # 0: never stop
    grace_steps: int = 0
    best: float | None = None
    best_step: int | None = None
    last: float | None = None
    bad_evals: int = 0

    def update(self, step: int, loss: float) -> tuple[bool, bool]:
        """Record an evaluation; returns ``(improved, stop)``."""
        finite = math.isfinite(loss)
        improved = finite and (self.best is None or loss < self.best)
        if improved:
            self.best, self.best_step = loss, step
        increased = self.last is not None and not loss <= self.last  # a NaN counts as worse
        if step > self.grace_steps:
            self.bad_evals = self.bad_evals + 1 if increased else 0
        self.last = loss
        return improved, self.patience > 0 and self.bad_evals >= self.patience

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for key in ("best", "best_step", "last", "bad_evals"):
            setattr(self, key, state.get(key))
        self.bad_evals = int(self.bad_evals or 0)


@torch.no_grad()
def validation_loss(model, batches: Iterable, device: torch.device, gate: float, autocast,
                    ) -> tuple[float, float]:
    """Token-weighted (sum of losses, labelled tokens) of the LM loss over ``batches``; the
    caller sums both over ranks and divides."""
    was_training = model.training
    model.eval()
    total, tokens = torch.zeros((), dtype=torch.float64, device=device), 0.0
    try:
        for batch in batches:
            n = batch.labelled  # counted on the CPU batch: no device sync per batch
            if n == 0:
                continue
            with autocast():
                out = model(batch.input_ids.to(device), batch.prompt_lens,
                            batch.labels.to(device), gate_scale=gate)
            total += out.lm_loss.double() * n  # a NaN stays visible: patience counts it as an increase
            tokens += n
    finally:
        model.train(was_training)
    return float(total), tokens
