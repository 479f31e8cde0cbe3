"""The HRM's input: a pooled view of the prompt, one vector per latent slot.

Each slot has a learned query and attends over the decoder's hidden states at the bridge layer,
restricted to prompt positions (t < prompt_len). Hidden states at those positions depend only on
prompt tokens (the decoder is causal), so nothing the decoder will be asked to predict can reach
the HRM. An empty prompt gives zero injection rather than NaN.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.model.config import ModelConfig
from trainer.model.norms import RMSNorm


class PromptPool(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.norm = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.key = nn.Linear(cfg.d_model, cfg.d_hrm, bias=False)
        self.value = nn.Linear(cfg.d_model, cfg.d_hrm, bias=False)
        self.queries = nn.Parameter(torch.randn(cfg.hrm_slots, cfg.d_hrm) / math.sqrt(cfg.d_hrm))
        self.out_norm = RMSNorm(cfg.d_hrm, eps=cfg.norm_eps)

    def forward(self, h: torch.Tensor, prompt_lens: torch.Tensor, longest: int | None = None) -> torch.Tensor:
        """h: [b, t, d_model]; prompt_lens: [b] -> injection [b, slots, d_hrm]. ``longest``: the
        longest prompt when the caller knows it from CPU data (else read here: a device sync)."""
        if longest is None:
            longest = int(prompt_lens.max()) if prompt_lens.numel() else 0
        h = h[:, :max(longest, 1)]  # positions past every prompt never contribute
        hn = self.norm(h)
        keys, values = self.key(hn), self.value(hn)
        dtype = torch.float64 if keys.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=h.device.type, enabled=False):
            scores = torch.einsum("sd,btd->bst", self.queries.to(dtype), keys.to(dtype))
            scores = scores / math.sqrt(keys.shape[-1])
            in_prompt = torch.arange(h.shape[1], device=h.device)[None, :] < prompt_lens[:, None]
            scores = scores.masked_fill(~in_prompt[:, None, :], float("-inf"))
            top = scores.amax(-1, keepdim=True)
            top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # empty prompt
            weights = torch.exp(scores - top)
            weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)
            pooled = weights @ values.to(dtype)
        return self.out_norm(pooled)
