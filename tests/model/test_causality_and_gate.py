"""No position sees what it predicts; a closed gate is exactly the plain decoder."""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from trainer.model import HRMMamba2LM, ModelConfig
from trainer.model.bridge import receives_memory


@pytest.mark.parametrize("overrides", [{}, {"use_halting": True}, {"deep_supervision": True}])
def test_changing_a_target_token_changes_no_earlier_logit(make_model, make_batch, overrides):
    model = make_model(**overrides)
    ids, lens, _ = make_batch()
    base = model(ids, lens).logits
    for t in (int(lens.max()), 15, 18):  # target positions (>= every prompt_len)
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % model.cfg.vocab_size
        logits = model(changed, lens).logits
        assert torch.equal(logits[:, :t], base[:, :t])
        assert not torch.allclose(logits[:, t:], base[:, t:])


def test_hrm_memory_depends_on_prompt_tokens_only(make_model, make_batch):
    model = make_model(use_halting=True)
    ids, lens, _ = make_batch()

    def readout(tokens):
        h = model.decoder.run(model.decoder.embed(tokens), 0, model.cfg.bridge_index)
        return model.read_hrm(h, lens, 1.0)

    base = readout(ids)
    targets_changed = ids.clone()
    for b, n in enumerate(lens.tolist()):
        targets_changed[b, n:] = torch.randint(0, model.cfg.vocab_size, (ids.shape[1] - n,))
    other = readout(targets_changed)
    assert torch.equal(base.memory, other.memory) and torch.equal(base.gate, other.gate)
    assert torch.equal(base.halt_probs, other.halt_probs)

    prompt_changed = ids.clone()
    prompt_changed[:, 0] = (prompt_changed[:, 0] + 1) % model.cfg.vocab_size
    assert not torch.allclose(readout(prompt_changed).memory, base.memory)


def test_memory_enters_from_the_last_prompt_position_on():
    mask = receives_memory(torch.tensor([0, 1, 4]), 6)
    assert mask.tolist() == [[True] * 6, [True] * 6, [False, False, False, True, True, True]]


def test_prompt_positions_before_the_last_see_no_memory(make_model, make_batch):
    model = make_model()
    ids, lens, _ = make_batch()
    open_, closed = model(ids, lens, gate_scale=1.0).logits, model(ids, lens, gate_scale=0.0).logits
    for b, n in enumerate(lens.tolist()):
        assert torch.equal(open_[b, :n - 1], closed[b, :n - 1])
        assert not torch.allclose(open_[b, n - 1:], closed[b, n - 1:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_gate_equals_the_decoder_without_hrm_exactly(make_model, make_batch, dtype):
    model = make_model(dtype=dtype, use_halting=True, deep_supervision=True)
    plain = HRMMamba2LM(ModelConfig(**{**asdict(model.cfg), "hrm_enabled": False})).to(dtype)
    missing, unexpected = plain.load_state_dict(model.state_dict(), strict=False)
    assert not missing and unexpected and all(not k.startswith("decoder.") for k in unexpected)
    ids, lens, labels = make_batch()
    a = model(ids, lens, labels, gate_scale=0.0)
    b = plain(ids, lens, labels)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.loss, b.loss) and a.ds_loss == 0 and a.halt_loss == 0
    assert a.diagnostics["gate_max"] == 0.0


def test_empty_and_full_prompts_are_finite(make_model):
    model = make_model(dtype=torch.float32)
    ids = torch.randint(0, model.cfg.vocab_size, (2, 9))
    lens = torch.tensor([0, 9])
    labels = torch.cat([ids[:, 1:], torch.full((2, 1), -100)], 1)
    out = model(ids, lens, labels)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
