"""One optimizer update that is the same on any number of ranks, with no host sync.

Every loss term is a mean over its own population, so each rank weights its term by its share
of that population in the global batch (counts summed over ranks before the forward):

    lm   (labelled tokens)               × n_labelled / N_labelled
    ds   (labelled tokens given memory)  × n_memory   / N_memory
    halt halting_weight × global mean gate (detached) × penalty × rows / ROWS

and the gradients are then summed (:func:`trainer.distributed.sum_gradients`), which keeps a
parameter without a gradient on every rank at ``grad is None`` so AdamW skips it exactly as
one process does. What the loop logs (loss terms, gradient norm, diagnostics, whether the update
was skipped) stays on the device; :class:`trainer.session.LogWindow` syncs once per log line.

A non-finite gradient norm skips the update. With torch's fused AdamW (CUDA) the skip is decided
on the device (``found_inf``, as the grad scaler does); other optimizers check on the host.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from trainer import distributed as dist

TERMS = ("loss", "lm_loss", "ds_loss", "halt_loss", "lm_mem_loss")


@dataclass
class StepOutput:
    terms: torch.Tensor  # [len(TERMS)] this rank's share; summed over ranks = global means
    diagnostics: torch.Tensor  # [len(DIAGNOSTIC_KEYS)] this rank's batch
    grad_norm: torch.Tensor  # 0-d, of the summed gradient (the same on every rank)
    skipped: torch.Tensor  # 0-d, 1.0 when the update was skipped (non-finite gradient norm)
    rows: int  # this rank's rows (weights the diagnostics' means)
    rank_mismatch: torch.Tensor | None  # 0-d, 1.0 when ranks disagreed on which grads exist


@dataclass(frozen=True)
class Shares:
    """This rank's part of the global batch, per loss term's population: python numbers in one
    process, 0-d device tensors across ranks (all-reduced on the device, never read back)."""

    lm: float | torch.Tensor
    memory: float | torch.Tensor
    rows: float | torch.Tensor
    total_rows: float | torch.Tensor


def shares(world: dist.World, batch, device: torch.device) -> Shares:
    """Counts read from the CPU batch; across ranks one device-side all-reduce (no host sync)."""
    local = [float(batch.labelled), float(batch.memory_labelled), float(len(batch.ids))]
    if not world.distributed:
        return Shares(*(1.0 if n else 0.0 for n in local), local[2])
    counts = torch.tensor(local, dtype=torch.float64).to(device, non_blocking=True)
    total = dist.all_sum_tensor(world, counts)
    weights = counts / total.clamp_min(1.0)
    return Shares(weights[0], weights[1], weights[2], total[2])


def scaled(term: torch.Tensor, weight: float | torch.Tensor) -> torch.Tensor:
    return term * (weight.to(term.dtype) if isinstance(weight, torch.Tensor) else weight)


def global_gate_mean(world: dist.World, out, rows: int, total_rows) -> torch.Tensor:
    """The halting penalty's gate factor over the global batch (one device-side all-reduce when
    halting is on across ranks; the model's own batch mean in one process)."""
    local = out.diagnostic_values[0].detach().double() * rows
    if not world.distributed:
        return local / max(1.0, total_rows)
    return dist.all_sum_tensor(world, local) / total_rows.clamp_min(1.0)


def train_step(model, optimizer, scaler, world: dist.World, device: torch.device, batch, lr: float,
               gate: float, grad_clip: float, autocast) -> tuple[StepOutput, Shares]:
    """Forward, backward, gradient sum over ranks, clip, step (or skip). Nothing syncs the host
    except the count collective over CPU numbers and, for optimizers without a device-side skip,
    the finiteness check."""
    from trainer.optim import set_lr

    set_lr(optimizer, lr)
    share = shares(world, batch, device)
    cfg = model.cfg
    with autocast():
        # non_blocking: a plain copy would synchronise the stream; prompt lengths stay on the CPU
        # (the model reads the longest prompt there and copies them itself)
        out = model(batch.input_ids.to(device, non_blocking=True), batch.prompt_lens,
                    batch.labels.to(device, non_blocking=True), gate_scale=gate)
    lm = scaled(out.lm_loss, share.lm)
    ds = scaled(out.ds_loss, share.memory)
    lm_mem = scaled(out.lm_mem_loss, share.memory)
    halt = torch.zeros_like(out.halt_penalty)
    if cfg.hrm_enabled and cfg.use_halting and gate != 0.0:
        gate_mean = global_gate_mean(world, out, len(batch.ids), share.total_rows).to(out.halt_penalty.dtype)
        halt = scaled(cfg.halting_weight * gate_mean * out.halt_penalty, share.rows)
    loss = lm + cfg.ds_weight * ds + halt
    (scaler.scale(loss) if scaler else loss).backward()
    mismatch = dist.sum_gradients(world, model)
    if scaler:
        scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip or math.inf)
    skipped = (~torch.isfinite(grad_norm)).float()
    if scaler:
        scaler.step(optimizer)  # skips on found_inf itself
        scaler.update()
    else:
        step_unless_nonfinite(optimizer, skipped)
    optimizer.zero_grad(set_to_none=True)
    terms = torch.stack([t.detach().float() for t in (loss, lm, ds, halt, lm_mem)])
    return StepOutput(terms, out.diagnostic_values.detach().float(), grad_norm.detach().float(), skipped,
                      len(batch.ids), mismatch), share


def step_unless_nonfinite(optimizer: torch.optim.Optimizer, skipped: torch.Tensor) -> None:
    if getattr(optimizer, "_step_supports_amp_scaling", False):  # fused AdamW: decided on the device
        optimizer.grad_scale, optimizer.found_inf = None, skipped
        try:
            optimizer.step()
        finally:
            del optimizer.grad_scale, optimizer.found_inf
    elif not bool(skipped):  # host sync; free on CPU, where nothing runs ahead anyway
        optimizer.step()

