"""Optional mamba_ssm fused kernel for the Mamba2 mixer (CUDA only).

The mixer's parameters are named and shaped as in mamba_ssm's ``Mamba2`` (in_proj, conv1d,
dt_bias, A_log, D, norm.weight, out_proj), so the same weights run through either path and a
checkpoint moves between them unchanged. The pure-PyTorch path is the reference; this one is used
only when the package imports and the tensors live on CUDA.

Status: written against mamba_ssm 2.x's ``mamba_split_conv1d_scan_combined`` signature; it has
not been run in this repository yet (no GPU so far) -- see BENCHMARKS.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

try:  # pragma: no cover - depends on an optional CUDA-only package
    from mamba_ssm.ops.triton.ssd_combined import mamba_split_conv1d_scan_combined
except Exception:  # ImportError, or a triton/CUDA mismatch raising at import time
    mamba_split_conv1d_scan_combined = None

if TYPE_CHECKING:
    from trainer.model.mamba2 import Mamba2Mixer


def kernels_available() -> bool:
    return mamba_split_conv1d_scan_combined is not None


def use_fused_path(mixer: "Mamba2Mixer", u: torch.Tensor) -> bool:
    """The fused kernel when allowed, importable and on CUDA; float64 stays on the reference."""
    return (mixer.use_kernels and kernels_available() and u.is_cuda
            and u.dtype != torch.float64)


def fused_mixer_forward(mixer: "Mamba2Mixer", u: torch.Tensor) -> torch.Tensor:  # pragma: no cover
    """Whole mixer (in_proj -> conv -> scan -> gated norm -> out_proj) in mamba_ssm's kernel."""
    zxbcdt = mixer.in_proj(u)
    return mamba_split_conv1d_scan_combined(
        zxbcdt,
        mixer.conv1d.weight.squeeze(1),  # [conv_dim, 1, width] -> [conv_dim, width]
        mixer.conv1d.bias,
        mixer.dt_bias,
        -torch.exp(mixer.A_log.float()),
        mixer.D,
        chunk_size=mixer.chunk_size,
        activation="silu",
        rmsnorm_weight=mixer.norm.weight,
        rmsnorm_eps=mixer.norm.eps,
        outproj_weight=mixer.out_proj.weight,
        outproj_bias=mixer.out_proj.bias,
        headdim=mixer.headdim,
        ngroups=mixer.ngroups,
        norm_before_gate=False,
    )
