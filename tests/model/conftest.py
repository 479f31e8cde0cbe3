"""Tiny model sizes for the model tests: every property is checked at a size that runs in
milliseconds on one CPU thread, with float64 wherever the claim is exactness."""

from __future__ import annotations

import pytest
import torch

from trainer.model import HRMMamba2LM, ModelConfig

torch.set_num_threads(1)

VOCAB = 61


def tiny_config(**overrides) -> ModelConfig:
    base = dict(vocab_size=VOCAB, d_model=32, n_layers=4, d_state=8, headdim=8, expand=2,
                ngroups=2, chunk_size=8, d_hrm=16, hrm_slots=3, hrm_heads=2, h_cycles=2,
                l_steps=2)
    base.update(overrides)
    return ModelConfig(**base)


def open_bridge(model: HRMMamba2LM, scale: float = 0.3) -> HRMMamba2LM:
    """Give the zero-initialised memory projection random weights, as training would: with the
    projection at zero no gradient can reach the HRM (by design), which would hide everything."""
    with torch.no_grad():
        model.bridge.memory_proj.weight.normal_(0.0, scale)
    return model


def batch(seed: int = 0, b: int = 3, t: int = 19, prompt_lens=(4, 9, 13)):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (b, t), generator=g)
    lens = torch.tensor(prompt_lens[:b])
    labels = torch.cat([ids[:, 1:], torch.full((b, 1), -100)], dim=1)
    positions = torch.arange(t)[None, :]
    labels = labels.masked_fill(positions < (lens[:, None] - 1), -100)  # targets only
    return ids, lens, labels


@pytest.fixture
def make_model():
    def build(dtype=torch.float64, seed: int = 0, bridge_open: bool = True, **overrides):
        torch.manual_seed(seed)
        model = HRMMamba2LM(tiny_config(**overrides)).to(dtype)
        if bridge_open and model.cfg.hrm_enabled:
            open_bridge(model)
        return model
    return build


@pytest.fixture
def make_config():
    return tiny_config


@pytest.fixture
def make_batch():
    return batch


@pytest.fixture
def open_memory():
    return open_bridge
