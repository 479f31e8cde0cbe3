"""Bridge from the HRM to the decoder: a memory vector and a per-sample gate.

The memory is a linear read of the H slots, zero-initialised so that switching the HRM on leaves
a trained decoder's function unchanged until training moves it. The gate ``sigmoid(w . x + b)``
reads the pooled prompt, so it can route samples toward or away from the HRM; the model scales
it by the trainer's ``gate_scale`` (the warm-up/ramp schedule is the trainer's, not state here).

With ``hrm_design = "per_token"`` the memory is one vector per position (the same zero-initialised
projection of that position's latent); the gate stays one number per sample, read from the pooled
prompt, so gate mu keeps its meaning across designs.

``hrm_gate_min`` puts a floor under the learned gate (the trainer's schedule still multiplies it,
so a shut schedule is still the plain decoder): the gate then reports how much more than the
floor the model wants, and the memory's projection never loses its gradient (docs/ablations.md).

Where the memory enters: positions t >= prompt_len - 1. Position t predicts token t + 1, and the
memory is a function of prompt tokens only, so every position that receives it predicts a token
the memory never saw; earlier positions (which predict prompt tokens) never receive it.
"""

from __future__ import annotations

import torch
from torch import nn

from trainer.model.config import ModelConfig
from trainer.model.norms import at_least_fp32


class Bridge(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        # pooled: all slots flattened into one vector per sequence; per_token: one latent per position
        self.flatten = cfg.hrm_design == "pooled"
        width = cfg.hrm_slots * cfg.d_hrm if self.flatten else cfg.d_hrm
        self.memory_proj = nn.Linear(width, cfg.d_model, bias=False)
        nn.init.zeros_(self.memory_proj.weight)
        self.gate_head = nn.Linear(cfg.d_hrm, 1)
        nn.init.zeros_(self.gate_head.bias)  # gate starts at 0.5 (times the schedule)
        self.gate_min = float(cfg.hrm_gate_min)

    def memory(self, z_H: torch.Tensor) -> torch.Tensor:
        """pooled: z_H [b, slots, d_hrm] -> [b, d_model]; per_token: [b, t, d_hrm] -> [b, t, d_model]."""
        return self.memory_proj(z_H.flatten(1) if self.flatten else z_H)

    def gate(self, injection: torch.Tensor) -> torch.Tensor:
        """injection: [b, slots, d_hrm] -> [b] in (hrm_gate_min, 1), at least fp32."""
        gate = torch.sigmoid(at_least_fp32(self.gate_head(injection.mean(1)))).squeeze(-1)
        return gate if self.gate_min == 0.0 else self.gate_min + (1.0 - self.gate_min) * gate


def receives_memory(prompt_lens: torch.Tensor, length: int) -> torch.Tensor:
    """[b, length] bool: the positions the memory is added to (t >= prompt_len - 1)."""
    positions = torch.arange(length, device=prompt_lens.device)
    return positions[None, :] >= (prompt_lens[:, None] - 1)


def add_memory(h: torch.Tensor, memory: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
    """h + memory at receiving positions; other positions are returned bit-for-bit unchanged.
    memory: [b, d_model] (the same at every position) or [b, t, d_model] (one per position)."""
    mask = receives_memory(prompt_lens, h.shape[1]).unsqueeze(-1)
    per_position = memory if memory.dim() == 3 else memory.unsqueeze(1)
    return torch.where(mask, h + per_position.to(h.dtype), h)
