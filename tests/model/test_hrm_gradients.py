"""Where gradient flows: the one-step rule inside the HRM, and every head once the gate is open."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.model import ModelConfig
from trainer.model.hrm import HRMCore, SlotAttention


def record_grad_flags(model):
    """Per module (L, H): for each call, whether its output carries a graph."""
    calls = {"L": [], "H": []}
    for name in calls:
        getattr(model.core, name).register_forward_hook(
            lambda _m, _i, out, name=name: calls[name].append(out.requires_grad))
    return calls


def nonzero_grad(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_one_step_rule_only_last_L_and_H_updates_carry_gradient(make_model, make_batch):
    model = make_model(h_cycles=3, l_steps=2)
    calls = record_grad_flags(model)
    ids, lens, labels = make_batch()
    model(ids, lens, labels).loss.backward()
    assert calls["L"] == [False] * 5 + [True]
    assert calls["H"] == [False] * 2 + [True]


def test_more_backpropagated_steps_on_request(make_model, make_batch):
    model = make_model(h_cycles=3, l_steps=2, hrm_bptt_steps=3)
    calls = record_grad_flags(model)
    ids, lens, labels = make_batch()
    model(ids, lens, labels)
    assert calls["L"] == [False] * 3 + [True] * 3
    assert calls["H"] == [True] * 3


def test_one_step_gradient_equals_grad_through_last_updates_from_detached_states():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=8, d_model=8, n_layers=1, headdim=8, d_state=4, d_hrm=16,
                      hrm_slots=3, hrm_heads=2)
    core = HRMCore(cfg).double()
    x = torch.randn(2, 3, 16, dtype=torch.float64, requires_grad=True)
    weights = torch.randn(2, 3, 16, dtype=torch.float64)

    *_, z_H = core.cycles(x, h_cycles=2, l_steps=3)
    grads = torch.autograd.grad((z_H * weights).sum(), [x, *core.parameters()])

    with torch.no_grad():  # every update but the last L and the last H, by hand
        z_L, z_h = core.z_L_init.expand(2, -1, -1), core.z_H_init.expand(2, -1, -1)
        for cycle in range(2):
            for step in range(3):
                if (cycle, step) != (1, 2):
                    z_L = core.L(z_L, z_h + x)
            if cycle == 0:
                z_h = core.H(z_h, z_L)
    z_L = core.L(z_L, z_h + x)
    manual = torch.autograd.grad((core.H(z_h, z_L) * weights).sum(), [x, *core.parameters()])
    for a, b in zip(grads, manual):
        assert (a - b).abs().max() <= 1e-12


@pytest.mark.parametrize("overrides", [{}, {"use_halting": True}, {"deep_supervision": True}])
def test_open_gate_sends_gradient_to_hrm_gate_and_halting(make_model, make_batch, overrides):
    model = make_model(**{"use_halting": True, **overrides})
    ids, lens, labels = make_batch()
    model(ids, lens, labels, gate_scale=0.5).loss.backward()
    for part in (model.pool, model.core.L, model.core.H, model.bridge.memory_proj,
                 model.bridge.gate_head, model.halting):
        assert nonzero_grad(part), part


def test_zero_initialised_memory_blocks_hrm_gradient_until_trained(make_model, make_batch):
    model = make_model(bridge_open=False)
    assert model.bridge.memory_proj.weight.abs().sum() == 0
    ids, lens, labels = make_batch()
    model(ids, lens, labels).loss.backward()
    assert nonzero_grad(model.bridge.memory_proj)  # the only way in, and it is open
    assert not nonzero_grad(model.core) and not nonzero_grad(model.bridge.gate_head)


def test_closed_gate_sends_no_gradient_to_hrm(make_model, make_batch):
    model = make_model(use_halting=True, deep_supervision=True)
    ids, lens, labels = make_batch()
    model(ids, lens, labels, gate_scale=0.0).loss.backward()
    hrm = [model.pool, model.core, model.bridge, model.halting]
    assert all(p.grad is None for part in hrm for p in part.parameters())
    assert nonzero_grad(model.decoder)


def test_bf16_autocast_forward_backward_is_finite(make_model, make_batch):
    model = make_model(dtype=torch.float32, use_halting=True, deep_supervision=True)
    ids, lens, labels = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, lens, labels, gate_scale=1.0)
    assert out.logits.dtype == torch.bfloat16
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.loss.dtype == torch.float32
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    reference = make_model(dtype=torch.float32, use_halting=True, deep_supervision=True)
    assert abs(out.lm_loss.item() - reference(ids, lens, labels).lm_loss.item()) < 0.05


def test_slot_attention_equals_scaled_dot_product_attention():
    torch.manual_seed(0)
    attn = SlotAttention(16, 4).double()
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    q, k, v = attn.qkv(x).view(3, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)
    reference = attn.out(F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(3, 5, 16))
    assert (attn(x) - reference).abs().max() <= 1e-12
