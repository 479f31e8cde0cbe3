"""Halting: per-cycle halting probabilities, the distribution they induce, and the penalty.

lambda_c = sigmoid(head(mean over slots of z_H after cycle c)), one per cycle.
The halting distribution (ACT-style) is p_c = lambda_c * prod_{j<c} (1 - lambda_j), with the
last cycle run taking the remaining mass, so p sums to 1. The memory the decoder receives is
sum_c p_c * memory_c: the head gets a task signal through the LM loss, and at inference the loop
can stop once the unhalted mass prod_j (1 - lambda_j) is below ``halt_epsilon`` (the memory then
differs from the full run by at most that mass times the largest memory difference).

Per-token design (``hrm_design = "per_token"``): every position that receives memory has its own
lambda_c and its own distribution; the penalty and the diagnostics average over those positions.

"halt sum" (BLUEPRINT diagnostics) is sum_c lambda_c per sample; the penalty pulls it toward
``halt_target``: mean over the batch of (halt_sum - target)^2, scaled by the model by
``halting_weight`` x the (detached) mean gate, so it only bites once the gate is open and never
pushes the gate shut to escape it.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.model.config import ModelConfig
from trainer.model.norms import at_least_fp32


class HaltingHead(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.proj = nn.Linear(cfg.d_hrm, 1)
        nn.init.zeros_(self.proj.bias)

    def forward(self, z_H: torch.Tensor) -> torch.Tensor:
        """z_H: [b, slots, d_hrm] -> lambda [b] (at least fp32)."""
        return torch.sigmoid(at_least_fp32(self.proj(z_H.mean(1)))).squeeze(-1)

    def per_position(self, z_H: torch.Tensor) -> torch.Tensor:
        """Per-token design: z_H [b, t, d_hrm] -> lambda [b, t], each position halting on its own."""
        return torch.sigmoid(at_least_fp32(self.proj(z_H))).squeeze(-1)


def halting_distribution(halt_probs: torch.Tensor) -> torch.Tensor:
    """[..., cycles] per-cycle halting probabilities -> [..., cycles] distribution summing to 1."""
    not_yet = torch.cumprod(1.0 - halt_probs, dim=-1)
    before = torch.cat([torch.ones_like(not_yet[..., :1]), not_yet[..., :-1]], dim=-1)
    return torch.cat([halt_probs[..., :-1] * before[..., :-1], before[..., -1:]], dim=-1)


def expected_cycles(distribution: torch.Tensor) -> torch.Tensor:
    """[..., cycles] -> [...]: expected number of cycles run, sum_c (c + 1) p_c."""
    counts = torch.arange(1, distribution.shape[-1] + 1, device=distribution.device,
                          dtype=distribution.dtype)
    return (distribution * counts).sum(-1)


def halting_penalty(halt_probs: torch.Tensor, target: float, where: torch.Tensor | None = None) -> torch.Tensor:
    """Unscaled penalty: mean over samples of (sum_c lambda_c - target)^2. Per-token design:
    halt_probs [b, t, cycles] and ``where`` [b, t] (the positions that receive memory)."""
    squared = (halt_probs.sum(-1) - target).pow(2)
    if where is None:
        return squared.mean()
    return torch.where(where, squared, 0.0).sum() / where.sum().clamp_min(1)
