"""Optimizers on CPU: AdamW and bitsandbytes' 8-bit AdamW both train the real model and resume."""

from __future__ import annotations

import pytest
import torch

from trainer.checkpoint import Checkpoints
from trainer.model import HRMMamba2LM, ModelConfig
from trainer.optim import build_optimizer, param_groups


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return HRMMamba2LM(ModelConfig(vocab_size=97, d_model=64, n_layers=2, d_state=16, headdim=16,
                                   chunk_size=16, d_hrm=32, hrm_slots=2, hrm_heads=2))


def fixed_batch():
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(3, 97, (4, 24), generator=g)
    labels = torch.cat([ids[:, 1:], torch.full((4, 1), -100)], 1)
    return ids, torch.tensor([5, 6, 7, 8]), labels


def train(model, opt, steps, batch):
    losses = []
    for _ in range(steps):
        out = model(*batch, gate_scale=1.0)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        opt.step()
        losses.append(float(out.loss.detach()))
    return losses


def test_decay_only_matrices():
    model = tiny_model()
    decay, no_decay = param_groups(model, 0.1)
    assert all(p.dim() >= 2 for p in decay["params"]) and all(p.dim() < 2 for p in no_decay["params"])
    assert no_decay["weight_decay"] == 0.0
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(model.parameters()))


@pytest.mark.parametrize("name", ["adamw", "adamw_8bit"])
def test_optimizer_trains_and_resumes_exactly(tmp_path, name):
    batch = fixed_batch()
    model = tiny_model()
    opt = build_optimizer(model, name, lr=3e-3, weight_decay=0.0)
    losses = train(model, opt, 6, batch)
    assert losses[-1] < losses[0] - 0.05, losses
    if name == "adamw_8bit":
        import bitsandbytes as bnb

        assert isinstance(opt, bnb.optim.AdamW8bit)
        states = [s for s in opt.state.values() if "state1" in s]
        assert any(s["state1"].dtype == torch.uint8 for s in states)  # block-quantised moments

    ck = Checkpoints(tmp_path)
    ck.save({"step": 6, "model": model.state_dict(), "optimizer": opt.state_dict()})
    expected = train(model, opt, 3, batch)

    loaded, _ = ck.load_latest()
    model2 = tiny_model(seed=99)
    model2.load_state_dict(loaded["model"])
    opt2 = build_optimizer(model2, name, lr=3e-3, weight_decay=0.0)
    opt2.load_state_dict(loaded["optimizer"])
    assert train(model2, opt2, 3, batch) == expected
