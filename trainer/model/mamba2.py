"""The Mamba2 mixer: full-sequence form for training and prefill, one-token step for decoding.

    u --in_proj--> z | xBC | dt
    xBC --depthwise causal conv1d, silu--> x | B | C
    dt  = softplus(dt + dt_bias)         A = -exp(A_log)          (fp32)
    y   = SSD(x, dt, A, B, C) + D * x
    out = out_proj(GatedRMSNorm(y, z))

Parameter names follow mamba_ssm's ``Mamba2`` so the fused kernel (kernels.py) runs the same
weights. The step form keeps the last ``d_conv - 1`` conv inputs and the SSM state per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from trainer.model import kernels
from trainer.model.config import ModelConfig
from trainer.model.norms import GatedRMSNorm
from trainer.model.ssd import ssd_chunked, ssd_step


@dataclass
class MixerState:
    """What one layer carries between tokens: previous conv inputs and the SSM state."""

    conv: torch.Tensor  # [b, conv_dim, d_conv - 1], oldest first
    ssm: torch.Tensor  # [b, n_heads, headdim, d_state], fp32 (float64 for a float64 model)


class Mamba2Mixer(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.d_inner, self.n_heads, self.headdim = cfg.d_inner, cfg.n_heads, cfg.headdim
        self.ngroups, self.d_state, self.d_conv = cfg.ngroups, cfg.d_state, cfg.d_conv
        self.chunk_size, self.use_kernels = cfg.chunk_size, cfg.use_kernels
        conv_dim = cfg.conv_dim
        self.in_proj = nn.Linear(cfg.d_model, self.d_inner + conv_dim + self.n_heads, bias=False)
        self.conv1d = nn.Conv1d(conv_dim, conv_dim, cfg.d_conv, groups=conv_dim,
                                padding=cfg.d_conv - 1, bias=True)
        self.dt_bias = nn.Parameter(torch.empty(self.n_heads))
        self.A_log = nn.Parameter(torch.empty(self.n_heads))
        self.D = nn.Parameter(torch.ones(self.n_heads))
        self.norm = GatedRMSNorm(self.d_inner, eps=cfg.norm_eps,
                                 group_size=self.d_inner // self.ngroups)
        self.out_proj = nn.Linear(self.d_inner, cfg.d_model, bias=False)
        self.reset_ssm_parameters(cfg)

    @torch.no_grad()
    def reset_ssm_parameters(self, cfg: ModelConfig) -> None:
        """Mamba2 init: dt log-uniform in [dt_min, dt_max] (stored as softplus^-1), A in [a_min, a_max]."""
        log_dt = torch.rand(self.n_heads) * (math.log(cfg.dt_max) - math.log(cfg.dt_min))
        dt = torch.exp(log_dt + math.log(cfg.dt_min)).clamp(min=cfg.dt_init_floor)
        self.dt_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        self.A_log.copy_(torch.log(torch.empty(self.n_heads).uniform_(cfg.a_init_min, cfg.a_init_max)))
        self.D.fill_(1.0)

    # ------------------------------------------------------------------ shared pieces
    def _split_in(self, zxbcdt: torch.Tensor):
        return torch.split(zxbcdt, [self.d_inner, self.d_inner + 2 * self.ngroups * self.d_state,
                                    self.n_heads], dim=-1)

    def _split_xbc(self, xbc: torch.Tensor):
        gn = self.ngroups * self.d_state
        x, B, C = torch.split(xbc, [self.d_inner, gn, gn], dim=-1)
        lead = x.shape[:-1]
        return (x.reshape(*lead, self.n_heads, self.headdim),
                B.reshape(*lead, self.ngroups, self.d_state),
                C.reshape(*lead, self.ngroups, self.d_state))

    def _discretise(self, dt_raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """softplus(dt + dt_bias) and A = -exp(A_log) in fp32 (float64 for float64 models)."""
        dtype = torch.float64 if dt_raw.dtype == torch.float64 else torch.float32
        with torch.autocast(device_type=dt_raw.device.type, enabled=False):
            dt = F.softplus(dt_raw.to(dtype) + self.dt_bias.to(dtype))
            A = -torch.exp(self.A_log.to(dtype))
        return dt, A

    def _finish(self, y: torch.Tensor, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        y = y + x.to(y.dtype) * self.D.to(y.dtype).unsqueeze(-1)
        y = y.reshape(*y.shape[:-2], self.d_inner)
        return self.out_proj(self.norm(y, z).to(z.dtype))

    # ------------------------------------------------------------------ full sequence
    def forward(self, u: torch.Tensor, return_state: bool = False,
                ) -> torch.Tensor | tuple[torch.Tensor, MixerState]:
        """u: [b, l, d_model] -> [b, l, d_model] (and the state after the last position)."""
        if not return_state and kernels.use_fused_path(self, u):
            return kernels.fused_mixer_forward(self, u)
        length = u.shape[1]
        z, xbc, dt_raw = self._split_in(self.in_proj(u))
        conv_in = xbc.transpose(1, 2)  # [b, conv_dim, l]
        xbc = F.silu(self.conv1d(conv_in)[..., :length].transpose(1, 2))
        x, B, C = self._split_xbc(xbc)
        dt, A = self._discretise(dt_raw)
        y, ssm_state = ssd_chunked(x, dt, A, B, C, self.chunk_size)
        out = self._finish(y, x, z)
        if not return_state:
            return out
        # the last d_conv - 1 conv inputs, zeros in front when the sequence is shorter
        conv_state = F.pad(conv_in, (self.d_conv - 1, 0))[..., length:]
        return out, MixerState(conv=conv_state.contiguous(), ssm=ssm_state)

    # ------------------------------------------------------------------ one token
    def empty_state(self, batch: int, device: torch.device, dtype: torch.dtype) -> MixerState:
        ssm_dtype = torch.float64 if dtype == torch.float64 else torch.float32
        return MixerState(
            conv=torch.zeros(batch, self.conv1d.in_channels, self.d_conv - 1, device=device, dtype=dtype),
            ssm=torch.zeros(batch, self.n_heads, self.headdim, self.d_state, device=device, dtype=ssm_dtype))

    def step(self, u: torch.Tensor, state: MixerState) -> tuple[torch.Tensor, MixerState]:
        """u: [b, d_model] for one position -> ([b, d_model], state after it)."""
        z, xbc, dt_raw = self._split_in(self.in_proj(u))
        window = torch.cat([state.conv.to(xbc.dtype), xbc.unsqueeze(-1)], dim=-1)  # [b, conv_dim, d_conv]
        weight = self.conv1d.weight.squeeze(1).to(window.dtype)  # [conv_dim, d_conv]
        xbc = F.silu((window * weight).sum(-1) + self.conv1d.bias.to(window.dtype))
        x, B, C = self._split_xbc(xbc)
        dt, A = self._discretise(dt_raw)
        y, ssm = ssd_step(state.ssm, x, dt, A, B, C)
        out = self._finish(y, x, z)
        return out, MixerState(conv=window[..., 1:], ssm=ssm)
