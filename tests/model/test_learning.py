"""The whole model trains: a small sequence task is learned in a few dozen optimizer steps."""

from __future__ import annotations

import pytest
import torch

from trainer.model import HRMMamba2LM


def progression_batch(gen: torch.Generator, vocab: int, b: int = 8, length: int = 12, prompt: int = 4):
    """Token t = (start + stride * t) mod vocab, stride in {1, 2}: the prompt tells the stride."""
    start = torch.randint(0, vocab, (b, 1), generator=gen)
    stride = torch.randint(1, 3, (b, 1), generator=gen)
    ids = (start + stride * torch.arange(length)) % vocab
    labels = torch.full_like(ids, -100)
    labels[:, prompt - 1:-1] = ids[:, prompt:]
    return ids, torch.full((b,), prompt), labels


@pytest.mark.parametrize("design", ["pooled", "per_token"])
def test_loss_falls_with_hrm_and_auxiliaries_on(make_config, design):
    torch.manual_seed(0)
    cfg = make_config(vocab_size=12, n_layers=2, use_halting=True, deep_supervision=True, hrm_design=design)
    model = HRMMamba2LM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(40):
        ids, lens, labels = progression_batch(gen, cfg.vocab_size)
        out = model(ids, lens, labels, gate_scale=min(1.0, step / 10))
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.lm_loss.item())
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > 2.0 and last < 0.3 * first, (first, last)
    assert model.bridge.memory_proj.weight.abs().sum() > 0  # the HRM path was trained
    assert out.diagnostics["gate_mean"] > 0 and out.diagnostics["halt_sum_mean"] > 0
