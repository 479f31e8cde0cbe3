"""The fused-kernel probe: mamba_ssm present but causal-conv1d missing must fall back, and the
run header names the path and why.

The fake mamba_ssm below is the one thing that cannot be real here: the package needs CUDA to
build. It reproduces what matters, the module layout and the conv function that mamba_ssm sets
to None when causal-conv1d does not import.
"""

from __future__ import annotations

import sys
import types
from types import SimpleNamespace

import pytest
import torch

from trainer.model import HRMMamba2LM, kernels

CUDA = torch.device("cuda")  # a device object only: nothing is allocated on it


def fake_mamba_ssm(monkeypatch, conv_function):
    def kernel(*_args, **_kwargs):
        raise AssertionError("the fake kernel must not run on CPU")

    names = ["mamba_ssm", "mamba_ssm.ops", "mamba_ssm.ops.triton", kernels.KERNEL_MODULE]
    modules = {name: types.ModuleType(name) for name in names}
    modules["mamba_ssm"].__version__ = "9.9.9"
    combined = modules[kernels.KERNEL_MODULE]
    combined.mamba_split_conv1d_scan_combined = kernel
    combined.causal_conv1d_fwd_function = conv_function
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    kernels.status.cache_clear()


@pytest.fixture(autouse=True)
def fresh_probe():
    kernels.status.cache_clear()
    yield
    kernels.status.cache_clear()


def test_without_mamba_ssm_the_header_says_pure_ssd(make_config):
    kernel, why = kernels.probe()
    if kernel is not None:  # pragma: no cover - a machine with the real package
        pytest.skip(f"mamba_ssm is installed here ({why})")
    assert why == "mamba_ssm not installed"
    cfg = make_config()
    assert kernels.describe_path(cfg, torch.device("cpu")) == "pure SSD (mamba_ssm not installed)"
    assert kernels.describe_path(cfg, CUDA) == "pure SSD (mamba_ssm not installed)"
    cfg.use_kernels = False
    assert kernels.describe_path(cfg, CUDA) == "pure SSD (use_kernels = false)"


def test_mamba_ssm_without_causal_conv1d_falls_back_to_pure_ssd(monkeypatch, make_config, make_batch):
    fake_mamba_ssm(monkeypatch, conv_function=None)
    assert not kernels.kernels_available()
    cfg = make_config()
    assert kernels.describe_path(cfg, CUDA) == "pure SSD (causal-conv1d not installed (mamba_ssm's conv function is None))"
    model = HRMMamba2LM(cfg)
    mixer = model.decoder.layers[0].mixer
    assert not kernels.use_fused_path(mixer, SimpleNamespace(is_cuda=True, dtype=torch.float32))
    ids, lens, labels = make_batch()
    assert torch.isfinite(model(ids, lens, labels).loss)  # the pure path runs


def test_with_causal_conv1d_the_fused_path_is_chosen_on_cuda_only(monkeypatch, make_config):
    fake_mamba_ssm(monkeypatch, conv_function=lambda *a: None)
    cfg = make_config()
    assert kernels.describe_path(cfg, CUDA) == "fused kernels (mamba_ssm 9.9.9)"
    assert kernels.describe_path(cfg, torch.device("cpu")) == "pure SSD (device cpu; mamba_ssm 9.9.9 needs CUDA)"
    mixer = HRMMamba2LM(cfg).decoder.layers[0].mixer
    assert kernels.use_fused_path(mixer, SimpleNamespace(is_cuda=True, dtype=torch.float32))
    assert not kernels.use_fused_path(mixer, SimpleNamespace(is_cuda=True, dtype=torch.float64))
    assert not kernels.use_fused_path(mixer, SimpleNamespace(is_cuda=False, dtype=torch.float32))


def test_conv_dim_must_be_a_multiple_of_8_when_kernels_run(monkeypatch, make_config):
    fake_mamba_ssm(monkeypatch, conv_function=lambda *a: None)
    odd = make_config(d_state=5, ngroups=1)  # conv_dim = 64 + 2 * 5 = 74
    with pytest.raises(ValueError, match=r"conv_dim = expand\*d_model \+ 2\*ngroups\*d_state = 74 is not a multiple of 8"):
        kernels.describe_path(odd, CUDA)
    assert kernels.describe_path(odd, torch.device("cpu")).startswith("pure SSD")  # pure path: any size
    odd.use_kernels = False
    assert kernels.describe_path(odd, CUDA) == "pure SSD (use_kernels = false)"
