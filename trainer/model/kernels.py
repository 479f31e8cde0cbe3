"""Optional mamba_ssm fused kernel for the Mamba2 mixer (CUDA only).

The mixer's parameters are named and shaped as in mamba_ssm's ``Mamba2`` (in_proj, conv1d,
dt_bias, A_log, D, norm.weight, out_proj), so the same weights run through either path and a
checkpoint moves between them unchanged. The pure-PyTorch path is the reference; this one is used
only when the kernel *and its convolution* are importable and the tensors live on CUDA.

Why the convolution is probed separately: mamba_ssm's ``ssd_combined`` imports even when
causal-conv1d is missing (it sets its conv function to None), and the first CUDA forward then
fails with "'NoneType' object is not callable". :func:`status` looks at that function (named
``causal_conv1d_fwd_function`` from mamba_ssm 2.2.3 / causal-conv1d 1.5, ``causal_conv1d_cuda``
before) and reports why the fused path is off; the run header prints it (:func:`describe_path`).

Status: written against mamba_ssm 2.x's ``mamba_split_conv1d_scan_combined`` signature; it has
not been run in this repository yet (no GPU so far) -- bench/gpu_check.py checks it against the
pure path when a GPU is at hand (see BENCHMARKS.md).
"""

from __future__ import annotations

import importlib
from functools import lru_cache
from typing import TYPE_CHECKING, Callable

import torch

if TYPE_CHECKING:
    from trainer.model.config import ModelConfig
    from trainer.model.mamba2 import Mamba2Mixer

KERNEL_MODULE = "mamba_ssm.ops.triton.ssd_combined"
CONV_FUNCTIONS = ("causal_conv1d_fwd_function", "causal_conv1d_cuda")  # new, legacy name
CONV_ALIGNMENT = 8  # causal-conv1d's channel-last kernel needs conv_dim % 8 == 0


def probe() -> tuple[Callable | None, str]:
    """(the fused kernel or None, why not / which version), importing mamba_ssm now."""
    try:
        module = importlib.import_module(KERNEL_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] == "mamba_ssm":
            return None, "mamba_ssm not installed"
        return None, f"mamba_ssm does not import: {exc}"
    except Exception as exc:  # noqa: BLE001 - a triton/CUDA mismatch raises anything at import
        return None, f"mamba_ssm does not import: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    kernel = getattr(module, "mamba_split_conv1d_scan_combined", None)
    if kernel is None:
        return None, "mamba_ssm has no mamba_split_conv1d_scan_combined"
    if all(getattr(module, name, None) is None for name in CONV_FUNCTIONS):
        return None, "causal-conv1d not installed (mamba_ssm's conv function is None)"
    version = getattr(importlib.import_module("mamba_ssm"), "__version__", "?")
    return kernel, f"mamba_ssm {version}"


@lru_cache(maxsize=1)
def status() -> tuple[Callable | None, str]:
    """:func:`probe` once per process."""
    return probe()


def kernels_available() -> bool:
    return status()[0] is not None


def check_shapes(cfg: "ModelConfig") -> None:
    """The fused path's shape requirements, as a one-line error naming the fields."""
    if cfg.conv_dim % CONV_ALIGNMENT:
        raise ValueError(
            f"use_kernels: conv_dim = expand*d_model + 2*ngroups*d_state = {cfg.conv_dim} is not a multiple of "
            f"{CONV_ALIGNMENT} (causal-conv1d needs it); change d_model, d_state or ngroups, or set use_kernels = false")


def describe_path(cfg: "ModelConfig", device: torch.device) -> str:
    """Which mixer path a run takes and why: "fused kernels (mamba_ssm 2.2.4)" or
    "pure SSD (<reason>)". Validates the fused path's shapes when it would run."""
    if not cfg.use_kernels:
        return "pure SSD (use_kernels = false)"
    kernel, why = status()
    if kernel is None:
        return f"pure SSD ({why})"
    if device.type != "cuda":
        return f"pure SSD (device {device.type}; {why} needs CUDA)"
    check_shapes(cfg)
    return f"fused kernels ({why})"


def use_fused_path(mixer: "Mamba2Mixer", u: torch.Tensor) -> bool:
    """The fused kernel when allowed, importable and on CUDA; float64 stays on the reference."""
    return (mixer.use_kernels and u.is_cuda and u.dtype != torch.float64 and kernels_available())


def fused_mixer_forward(mixer: "Mamba2Mixer", u: torch.Tensor) -> torch.Tensor:  # pragma: no cover
    """Whole mixer (in_proj -> conv -> scan -> gated norm -> out_proj) in mamba_ssm's kernel."""
    conv_dim = mixer.conv1d.weight.shape[0]
    if conv_dim % CONV_ALIGNMENT:
        raise ValueError(f"fused Mamba2 mixer: conv_dim {conv_dim} is not a multiple of {CONV_ALIGNMENT}")
    zxbcdt = mixer.in_proj(u)
    return status()[0](
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
