"""``hrm_gate_min``: a floor under the learned gate, checked against the gate written by hand.

The reference reads the gate head's weights and the pooled prompt directly and adds
``gate x memory`` at the receiving positions with a loop, so the model's vectorised path must
give the same logits; with the trainer's schedule shut the model is still exactly the plain
decoder, and a saturated gate head no longer cuts the memory projection off from its gradient.
"""

from __future__ import annotations

from dataclasses import asdict

import pytest
import torch

from trainer.model import HRMMamba2LM, ModelConfig

DESIGNS = [{"hrm_design": "pooled"}, {"hrm_design": "per_token"}]


def reference_logits(model, ids, lens, scale):
    """The forward written out: gate = (min + (1 - min) sigmoid(w . mean(pool) + b)) x scale,
    memory added row by row at positions t >= prompt_len - 1."""
    cfg = model.cfg
    h = model.decoder.run(model.decoder.embed(ids), 0, cfg.bridge_index)
    pooled = model.pool(h, lens).mean(1)
    head = model.bridge.gate_head
    raw = torch.sigmoid(pooled @ head.weight[0] + head.bias[0])
    gate = (cfg.hrm_gate_min + (1.0 - cfg.hrm_gate_min) * raw) * scale
    memory = model.read_hrm(h, lens, 1.0).memory  # the memory itself is tested elsewhere
    top = h.clone()
    for r in range(ids.shape[0]):
        for t in range(int(lens[r]) - 1, ids.shape[1]):
            m = memory[r] if memory.dim() == 2 else memory[r, t]
            top[r, t] = h[r, t] + gate[r] * m
    return model.decoder.logits(model.decoder.run(top, cfg.bridge_index, cfg.n_layers)), gate


@pytest.mark.parametrize("design", DESIGNS)
@pytest.mark.parametrize("floor", [0.0, 0.4])
def test_floored_gate_and_logits_equal_the_written_out_forward(make_model, make_batch, design, floor):
    model = make_model(**design, hrm_gate_min=floor)
    with torch.no_grad():
        model.bridge.gate_head.bias.fill_(-3.0)  # the head mostly shut: the floor must show
    ids, lens, _ = make_batch()
    with torch.no_grad():
        want, gate = reference_logits(model, ids, lens, 0.7)
    out = model(ids, lens, gate_scale=0.7)
    assert torch.allclose(out.logits, want, atol=1e-10, rtol=0)
    assert abs(out.diagnostics["gate_mean"] - float(gate.mean())) < 1e-9
    if floor:
        assert float(gate.min()) >= 0.7 * floor


@pytest.mark.parametrize("design", DESIGNS)
def test_shut_schedule_with_a_floor_is_the_plain_decoder_exactly(make_model, make_batch, design):
    model = make_model(**design, hrm_gate_min=0.5)
    plain = HRMMamba2LM(ModelConfig(**{**asdict(model.cfg), "hrm_enabled": False})).to(torch.float64)
    plain.load_state_dict(model.state_dict(), strict=False)
    ids, lens, labels = make_batch()
    a, b = model(ids, lens, labels, gate_scale=0.0), plain(ids, lens, labels)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.loss, b.loss)


@pytest.mark.parametrize("design", DESIGNS)
def test_floor_keeps_the_memory_gradient_when_the_gate_head_saturates(make_model, make_batch, design):
    ids, lens, labels = make_batch()
    grads = {}
    for floor in (0.0, 0.25):
        model = make_model(**design, hrm_gate_min=floor)
        with torch.no_grad():
            model.bridge.gate_head.bias.fill_(-40.0)  # sigmoid ~ 4e-18: the collapsed gate
        model(ids, lens, labels, gate_scale=1.0).loss.backward()
        grads[floor] = model.bridge.memory_proj.weight.grad.abs().max().item()
    assert grads[0.0] < 1e-12 < 1e-4 < grads[0.25]


def test_checkpoint_loads_across_gate_floors(make_model):
    a = make_model(hrm_design="per_token")
    b = make_model(hrm_design="per_token", hrm_gate_min=0.3)
    b.load_state_dict(a.state_dict())  # no parameter depends on the floor


@pytest.mark.parametrize("bad", [-0.1, 1.0])
def test_gate_floor_outside_the_unit_interval_is_refused_by_name(make_config, bad):
    with pytest.raises(ValueError, match="hrm_gate_min"):
        make_config(hrm_gate_min=bad)
