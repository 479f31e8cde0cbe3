"""Bridge from the HRM to the decoder: a memory vector and a per-sample gate.

The memory is a linear read of the H slots, zero-initialised so that switching the HRM on leaves
a trained decoder's function unchanged until training moves it. The gate ``sigmoid(w . x + b)``
reads the pooled prompt, so it can route samples toward or away from the HRM; the model scales
it by the trainer's ``gate_scale`` (the warm-up/ramp schedule is the trainer's, not state here).

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
        self.memory_proj = nn.Linear(cfg.hrm_slots * cfg.d_hrm, cfg.d_model, bias=False)
        nn.init.zeros_(self.memory_proj.weight)
        self.gate_head = nn.Linear(cfg.d_hrm, 1)
        nn.init.zeros_(self.gate_head.bias)  # gate starts at 0.5 (times the schedule)

    def memory(self, z_H: torch.Tensor) -> torch.Tensor:
        """z_H: [b, slots, d_hrm] -> [b, d_model]."""
        return self.memory_proj(z_H.flatten(1))

    def gate(self, injection: torch.Tensor) -> torch.Tensor:
        """injection: [b, slots, d_hrm] -> [b] in (0, 1), at least fp32."""
        return torch.sigmoid(at_least_fp32(self.gate_head(injection.mean(1)))).squeeze(-1)


def receives_memory(prompt_lens: torch.Tensor, length: int) -> torch.Tensor:
    """[b, length] bool: the positions the memory is added to (t >= prompt_len - 1)."""
    positions = torch.arange(length, device=prompt_lens.device)
    return positions[None, :] >= (prompt_lens[:, None] - 1)


def add_memory(h: torch.Tensor, memory: torch.Tensor, prompt_lens: torch.Tensor) -> torch.Tensor:
    """h + memory at receiving positions; other positions are returned bit-for-bit unchanged."""
    mask = receives_memory(prompt_lens, h.shape[1]).unsqueeze(-1)
    return torch.where(mask, h + memory.unsqueeze(1).to(h.dtype), h)
