"""RMSNorm and Mamba2's gated RMSNorm, both computed in fp32 whatever the input dtype.

Reductions over the hidden size lose precision in bf16, and these norms sit on the residual
stream and right after the scan, so they upcast and cast the result back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """Upcast half precision to fp32; leave fp32 and float64 as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = at_least_fp32(x)
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * self.weight.to(out.dtype)).to(x.dtype)


class GatedRMSNorm(nn.Module):
    """``norm(y * silu(z)) * weight`` per group of ``group_size`` channels.

    This is mamba_ssm's ``RMSNormGated`` with ``norm_before_gate=False`` (the Mamba2 default),
    parameter ``weight`` of size ``dim``, so its state dict is interchangeable with theirs.
    """

    def __init__(self, dim: int, eps: float = 1e-5, group_size: int | None = None):
        super().__init__()
        self.eps = eps
        self.group_size = group_size or dim
        if dim % self.group_size:
            raise ValueError(f"GatedRMSNorm: dim={dim} not a multiple of group_size={self.group_size}")
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        dtype = y.dtype
        compute = torch.float64 if dtype == torch.float64 else torch.float32
        g = y.to(compute) * F.silu(z.to(compute))
        shape = g.shape
        g = g.reshape(*shape[:-1], shape[-1] // self.group_size, self.group_size)
        g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + self.eps)
        return (g.reshape(shape) * self.weight.to(compute)).to(dtype)
