"""Validation loss and early stopping.

Patience counts *consecutive increases* of the validation loss (each evaluation compared with
the one before), and only for evaluations after ``patience_grace_steps``: early in a run the
loss is noisy and a gate opening can bump it. The state is plain numbers saved in every
checkpoint, so a resumed run stops exactly where an uninterrupted one would.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import Callable, Iterable, Iterator

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


@contextmanager
def progress(console, label: str, total: int, enabled: bool = True) -> Iterator[Callable[[], None]]:
    """A progress display for ``total`` units of work; yields ``advance()``. A bar on a terminal;
    in a log (CI, a file) a line at each quarter, so a long validation is never silent."""
    if not enabled or total <= 0:
        yield lambda: None
        return
    started = time.perf_counter()
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task(label, total=total)
            yield lambda: bar.advance(task)
    else:
        done, marks = [0], {max(1, total * q // 4) for q in (1, 2, 3, 4)}

        def advance() -> None:
            done[0] += 1
            if done[0] in marks:
                console.print(f"{label}: {done[0]}/{total} ({time.perf_counter() - started:.1f} s)", highlight=False)

        yield advance


@torch.no_grad()
def validation_loss(model, batches: Iterable, device: torch.device, gate: float, autocast,
                    on_batch: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """Token-weighted (sum of losses, labelled tokens) of the LM loss over ``batches``; the
    caller sums both over ranks and divides. ``on_batch`` is called after each batch (progress)."""
    was_training = model.training
    model.eval()
    total, tokens = torch.zeros((), dtype=torch.float64, device=device), 0.0
    try:
        for batch in batches:
            n = batch.labelled  # counted on the CPU batch: no device sync per batch
            if n:
                with autocast():
                    out = model(batch.input_ids.to(device), batch.prompt_lens,
                                batch.labels.to(device), gate_scale=gate)
                total += out.lm_loss.double() * n  # a NaN stays visible: patience counts it as an increase
                tokens += n
            on_batch()
    finally:
        model.train(was_training)
    return float(total), tokens
