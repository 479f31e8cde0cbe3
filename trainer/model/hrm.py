"""HRM core: a slow high-level module H and a fast low-level module L over a few latent slots.

    for cycle in range(h_cycles):
        for step in range(l_steps):
            z_L = L(z_L, z_H + x)          # input injection: x is the pooled prompt
        z_H = H(z_H, z_L)
        yield z_H

Gradient follows HRM's one-step approximation: every update runs under ``no_grad`` except the
last ``bptt_steps`` L updates and the last ``bptt_steps`` H updates (1 = the paper's rule: the
last L and the last H). When every cycle's output feeds a loss (deep supervision, halting), each
cycle is its own segment as in HRM's deep supervision: its last L and H update carry gradient
and the state it hands to the next cycle is detached.

Modules are post-norm residual blocks (attention across slots, SwiGLU), as in HRM, so the
recurrent state stays bounded however many cycles run. Initial states are fixed buffers, not
learned: no parameter depends on the number of cycles, and none sits unused under one-step grad.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from trainer.model.config import ModelConfig
from trainer.model.norms import RMSNorm


class SlotAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.out = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Slots see each other (no mask). Written as two small matmuls rather than
        scaled_dot_product_attention: for a handful of slots the fused CPU kernel's per-call
        thread fan-out costs more than the work (3.5x slower on a busy 2-core machine)."""
        b, s, d = x.shape
        q, k, v = self.qkv(x).view(b, s, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        weights = torch.softmax((q @ k.transpose(-1, -2)) * (d // self.heads) ** -0.5, dim=-1)
        return self.out((weights @ v).transpose(1, 2).reshape(b, s, d))


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.gate_up = nn.Linear(dim, 2 * hidden, bias=False)
        self.down = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.down(F.silu(gate) * up)


class SlotBlock(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn = SlotAttention(cfg.d_hrm, cfg.hrm_heads)
        self.mlp = SwiGLU(cfg.d_hrm, cfg.hrm_mlp_ratio * cfg.d_hrm)
        self.norm_attn = RMSNorm(cfg.d_hrm, eps=cfg.norm_eps)
        self.norm_mlp = RMSNorm(cfg.d_hrm, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm_attn(x + self.attn(x))
        return self.norm_mlp(x + self.mlp(x))


class RecurrentModule(nn.Module):
    """One HRM module: ``new_state = blocks(state + injection)``."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.blocks = nn.ModuleList(SlotBlock(cfg) for _ in range(cfg.hrm_layers))

    def forward(self, state: torch.Tensor, injection: torch.Tensor) -> torch.Tensor:
        x = state + injection
        for block in self.blocks:
            x = block(x)
        return x


class HRMCore(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.L = RecurrentModule(cfg)
        self.H = RecurrentModule(cfg)
        init = torch.nn.init.trunc_normal_(torch.empty(2, cfg.hrm_slots, cfg.d_hrm), std=1.0)
        self.register_buffer("z_L_init", init[0].clone())
        self.register_buffer("z_H_init", init[1].clone())

    def cycles(self, injection: torch.Tensor, h_cycles: int, l_steps: int, bptt_steps: int = 1,
               every_cycle: bool = False, whole_cycle: bool = False) -> Iterator[torch.Tensor]:
        """Yields z_H after each cycle (see :func:`recurrence` for the gradient rule)."""
        b = injection.shape[0]
        dtype = injection.dtype
        z_L = self.z_L_init.to(dtype).expand(b, -1, -1)
        z_H = self.z_H_init.to(dtype).expand(b, -1, -1)
        yield from recurrence(lambda z_l, z_h: self.L(z_l, z_h + injection), self.H, z_L, z_H,
                              h_cycles, l_steps, bptt_steps, every_cycle, whole_cycle)


def recurrence(update_L: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               update_H: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
               z_L: torch.Tensor, z_H: torch.Tensor, h_cycles: int, l_steps: int,
               bptt_steps: int = 1, every_cycle: bool = False,
               whole_cycle: bool = False) -> Iterator[torch.Tensor]:
    """The H x L schedule and its gradient rule, shared by every HRM design:
    ``z_L = update_L(z_L, z_H)`` l_steps times, then ``z_H = update_H(z_H, z_L)``; yields z_H
    after each cycle. The caller may stop early (halting at inference).

    ``every_cycle``: each yielded state carries its own one-step gradient (segments): the
    state handed to cycle c is detached unless the BPTT tail (the last ``bptt_steps`` L
    updates) starts before cycle c. Which module applications lie on each yielded state's
    autograd path is spelled out, for a grid of settings, in tests/model/test_hrm_segments.py.

    ``whole_cycle`` (TRM's rule, arXiv 2510.04871: backpropagate through one whole recursion):
    in every cycle whose H update carries gradient, every L update of that cycle carries it too,
    not only the last. With segments this is TRM's deep supervision: the detached state is
    carried to the next supervised cycle and the gradient runs through the whole cycle.
    """
    grad = torch.is_grad_enabled()
    total_l = h_cycles * l_steps
    for cycle in range(h_cycles):
        h_grad = cycle >= h_cycles - bptt_steps or every_cycle
        if every_cycle and cycle * l_steps <= total_l - bptt_steps:
            # segment boundary: no L update before this cycle is among the last bptt_steps,
            # so nothing earlier may reach this cycle's state
            z_L, z_H = z_L.detach(), z_H.detach()
        for step in range(l_steps):
            index = cycle * l_steps + step
            with_grad = (index >= total_l - bptt_steps or (every_cycle and step == l_steps - 1)
                         or (whole_cycle and h_grad))
            with torch.set_grad_enabled(grad and with_grad):
                z_L = update_L(z_L, z_H)
        with torch.set_grad_enabled(grad and h_grad):
            z_H = update_H(z_H, z_L)
        yield z_H
