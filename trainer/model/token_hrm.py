"""Per-token HRM (``hrm_design = "per_token"``): a latent per answer position that re-reads the prompt.

    for every position t that receives memory (t >= prompt_len - 1), independently:
        x_t = inject(h_t)                             h_t: the decoder's state at the bridge layer
        z_L, z_H = fixed init vectors
        for cycle in range(h_cycles):
            for step in range(l_steps):
                z_L = L(z_L, z_H + x_t; prompt)       each block: cross-attention to the prompt, SwiGLU
            z_H = H(z_H, z_L; prompt)
        memory_t = W z_H                              (halting-weighted over cycles when halting is on)

Why: the pooled design hands the decoder one prompt summary per sequence, the same at every
answer position, so it can neither follow what has been generated nor apply a different
nonlinear step at each answer token. Here the latent of position t starts from that position's
own decoder state (which has seen the prompt and every answer token so far: the decoder counts),
re-reads the prompt with queries that depend on the latent (cross-attention in every block of
every update), and passes through 2 x h_cycles x (l_steps + 1) x hrm_layers SwiGLU blocks before it is
added back at position t. That is the depth a count -> parity or count -> mod 3 map needs, which
the MLP-free Mamba2 decoder lacks.

Causality: position t reads h_t (tokens <= t) and prompt positions s < prompt_len <= t + 1, so
nothing it is asked to predict reaches it; positions are independent of each other, so the cached
one-token step computes exactly what the full forward computes at that position.

The gradient rule is the seed design's (hrm.recurrence, shared): one-step by default, segments
per cycle under deep supervision or halting, ``hrm_bptt_steps`` for a longer tail, and
``hrm_whole_cycle_grad`` for TRM's gradient through every update of a cycle.
"""

from __future__ import annotations


from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn

from trainer.model.config import ModelConfig
from trainer.model.hrm import SwiGLU, recurrence
from trainer.model.norms import RMSNorm, at_least_fp32


@dataclass
class PromptContext:
    """The prompt as the latents read it, computed once per sequence (and kept for generation)."""

    keys: torch.Tensor  # [b, heads, s, head_dim]
    values: torch.Tensor  # [b, heads, s, head_dim]
    visible: torch.Tensor  # [b, 1, 1, s] bool: s < prompt_len


class PromptRead(nn.Module):
    """Cross-attention from each latent to the prompt positions; an empty prompt reads zeros."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.hrm_heads
        self.query = nn.Linear(cfg.d_hrm, cfg.d_hrm, bias=False)
        self.out = nn.Linear(cfg.d_hrm, cfg.d_hrm, bias=False)

    def forward(self, x: torch.Tensor, prompt: PromptContext) -> torch.Tensor:
        b, t, d = x.shape
        q = self.query(x).view(b, t, self.heads, d // self.heads).transpose(1, 2)
        scores = at_least_fp32(q @ prompt.keys.transpose(-1, -2)) * (d // self.heads) ** -0.5
        scores = scores.masked_fill(~prompt.visible, float("-inf"))
        top = scores.amax(-1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # empty prompt
        weights = torch.exp(scores - top)
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-30)
        read = weights.to(prompt.values.dtype) @ prompt.values
        return self.out(read.transpose(1, 2).reshape(b, t, d))


class TokenBlock(nn.Module):
    """Post-norm like the slot blocks (bounded state over many cycles): read the prompt, SwiGLU."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.read = PromptRead(cfg)
        self.mlp = SwiGLU(cfg.d_hrm, cfg.hrm_mlp_ratio * cfg.d_hrm)
        self.norm_read = RMSNorm(cfg.d_hrm, eps=cfg.norm_eps)
        self.norm_mlp = RMSNorm(cfg.d_hrm, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor, prompt: PromptContext) -> torch.Tensor:
        x = self.norm_read(x + self.read(x, prompt))
        return self.norm_mlp(x + self.mlp(x))


class TokenModule(nn.Module):
    """One HRM module over per-position latents: ``new_state = blocks(state + injection)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(TokenBlock(cfg) for _ in range(cfg.hrm_layers))

    def forward(self, state: torch.Tensor, injection: torch.Tensor, prompt: PromptContext) -> torch.Tensor:
        x = state + injection
        for block in self.blocks:
            x = block(x, prompt)
        return x


class TokenCore(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.hrm_heads
        self.norm = RMSNorm(cfg.d_model, eps=cfg.norm_eps)
        self.inject = nn.Linear(cfg.d_model, cfg.d_hrm, bias=False)
        self.inject_norm = RMSNorm(cfg.d_hrm, eps=cfg.norm_eps)
        self.key = nn.Linear(cfg.d_model, cfg.d_hrm, bias=False)
        self.value = nn.Linear(cfg.d_model, cfg.d_hrm, bias=False)
        self.L = TokenModule(cfg)
        self.H = TokenModule(cfg)
        init = torch.nn.init.trunc_normal_(torch.empty(2, cfg.d_hrm), std=1.0)
        self.register_buffer("z_L_init", init[0].clone())
        self.register_buffer("z_H_init", init[1].clone())

    def context(self, h: torch.Tensor, prompt_lens: torch.Tensor, longest: int | None = None) -> PromptContext:
        """h: [b, t, d_model] bridge-layer states; only positions < prompt_len become visible."""
        if longest is None:
            longest = int(prompt_lens.max()) if prompt_lens.numel() else 0
        h = h[:, :max(longest, 1)]
        b, s, _ = h.shape
        hn = self.norm(h)
        split = lambda x: x.view(b, s, self.heads, -1).transpose(1, 2)  # noqa: E731
        visible = torch.arange(s, device=h.device)[None, :] < prompt_lens[:, None]
        return PromptContext(split(self.key(hn)), split(self.value(hn)), visible[:, None, None, :])

    def injection(self, h: torch.Tensor) -> torch.Tensor:
        """[b, w, d_model] states of the positions to serve -> [b, w, d_hrm]."""
        return self.inject_norm(self.inject(self.norm(h)))

    def cycles(self, x: torch.Tensor, prompt: PromptContext, h_cycles: int, l_steps: int,
               bptt_steps: int = 1, every_cycle: bool = False,
               whole_cycle: bool = False) -> Iterator[torch.Tensor]:
        """x: [b, w, d_hrm] -> yields z_H [b, w, d_hrm] after each cycle."""
        z_L = self.z_L_init.to(x.dtype).expand_as(x)
        z_H = self.z_H_init.to(x.dtype).expand_as(x)
        yield from recurrence(lambda z_l, z_h: self.L(z_l, z_h + x, prompt),
                              lambda z_h, z_l: self.H(z_h, z_l, prompt),
                              z_L, z_H, h_cycles, l_steps, bptt_steps, every_cycle, whole_cycle)




def per_token_forward_flops(cfg: ModelConfig, batch: int, prompt_len: int, positions: int) -> int:
    """Matrix-product FLOPs (2 per multiply-add) of one per-token HRM forward without halting or
    deep supervision: the prompt's keys and values, the gate's pooled prompt, and ``positions``
    latents per row, each through h_cycles x (l_steps + 1) x hrm_layers blocks. The training
    cost of the design is counted by trainer/ablate/cost.py from the operators actually run;
    this formula is what that count must equal (tests/model/test_per_token_hrm.py)."""
    d, m, s = cfg.d_hrm, cfg.d_model, prompt_len
    prompt = 2 * 2 * s * m * d  # keys, values
    pool = 2 * 2 * s * m * d + 2 * 2 * cfg.hrm_slots * s * d + 2 * d  # keys, values, scores, mix, gate
    block = 2 * 2 * d * d + 2 * 2 * s * d + 2 * 3 * cfg.hrm_mlp_ratio * d * d  # q/out, attention, SwiGLU
    per_position = 2 * m * d + cfg.h_cycles * (cfg.l_steps + 1) * cfg.hrm_layers * block + 2 * d * m
    return batch * (prompt + pool + positions * per_position)
