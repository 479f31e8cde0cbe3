"""The per-token HRM design (``hrm_design = "per_token"``) against an independent reference.

The reference walks row by row and position by position with plain vectors: no batching, no
masks, no padding, attention written head by head, halting's distribution written as the ACT
loop. The model's vectorised path must give the same memory. Beside it: the design keeps every
contract of the seed design (closed gate = plain decoder, no position sees what it predicts,
the cached step = the full forward, the one-step gradient rule, checkpoints across switches).
"""

from __future__ import annotations

import io
from dataclasses import asdict

import pytest
import torch
import torch.nn.functional as F

from trainer.model import HRMMamba2LM, ModelConfig
from trainer.model.bridge import receives_memory

PER_TOKEN = {"hrm_design": "per_token"}


def rms(module, x):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + module.eps) * module.weight


def reference_block(block, x, keys, values, heads):
    """One TokenBlock on one latent x [d] reading prompt keys/values [n, d], head by head."""
    d = x.shape[0]
    dh = d // heads
    q = block.read.query.weight @ x
    parts = []
    for i in range(heads):
        cols = slice(i * dh, (i + 1) * dh)
        if keys.shape[0] == 0:
            parts.append(torch.zeros(dh, dtype=x.dtype))
            continue
        weights = torch.softmax(keys[:, cols] @ q[cols] / dh ** 0.5, dim=0)
        parts.append(weights @ values[:, cols])
    x = rms(block.norm_read, x + block.read.out.weight @ torch.cat(parts))
    gate, up = (block.mlp.gate_up.weight @ x).chunk(2)
    return rms(block.norm_mlp, x + block.mlp.down.weight @ (F.silu(gate) * up))


def reference_module(module, state, injection, keys, values, heads):
    x = state + injection
    for block in module.blocks:
        x = reference_block(block, x, keys, values, heads)
    return x


def reference_memory(model, ids, lens):
    """[b, t, d_model]: memory at every position that receives it (zeros elsewhere)."""
    cfg, core = model.cfg, model.core
    h = model.decoder.run(model.decoder.embed(ids), 0, cfg.bridge_index)
    b, t, _ = h.shape
    out = torch.zeros(b, t, cfg.d_model, dtype=h.dtype)
    for r in range(b):
        n = int(lens[r])
        prompt = rms(core.norm, h[r, :n])
        keys, values = prompt @ core.key.weight.T, prompt @ core.value.weight.T
        for pos in range(max(n - 1, 0), t):
            x = rms(core.inject_norm, core.inject.weight @ rms(core.norm, h[r, pos]))
            z_L, z_H = core.z_L_init.clone(), core.z_H_init.clone()
            states = []
            for _ in range(cfg.h_cycles):
                for _ in range(cfg.l_steps):
                    z_L = reference_module(core.L, z_L, z_H + x, keys, values, cfg.hrm_heads)
                z_H = reference_module(core.H, z_H, z_L, keys, values, cfg.hrm_heads)
                states.append(z_H)
            mixed = states[-1]
            if cfg.use_halting:
                lambdas = [torch.sigmoid(model.halting.proj.weight[0] @ z + model.halting.proj.bias[0])
                           for z in states]
                mixed, unhalted = torch.zeros_like(z_H), 1.0
                for c, (lam, z) in enumerate(zip(lambdas, states)):
                    p = unhalted if c == len(states) - 1 else lam * unhalted
                    mixed = mixed + p * z
                    unhalted = unhalted * (1 - lam)
            out[r, pos] = model.bridge.memory_proj.weight @ mixed
    return out


def bridge_states(model, ids):
    return model.decoder.run(model.decoder.embed(ids), 0, model.cfg.bridge_index)


@pytest.mark.parametrize("overrides", [{}, {"use_halting": True}, {"hrm_layers": 2, "h_cycles": 3, "l_steps": 1}])
def test_memory_equals_the_position_by_position_reference(make_model, make_batch, overrides):
    model = make_model(**PER_TOKEN, **overrides)
    ids, _, _ = make_batch()
    lens = torch.tensor([0, 9, 19])  # empty prompt, a middle one, the whole row
    with torch.no_grad():
        memory = model.read_hrm(bridge_states(model, ids), lens, 1.0).memory
        expected = reference_memory(model, ids, lens)
    receiving = receives_memory(lens, ids.shape[1])
    assert memory.shape == expected.shape
    assert (memory[receiving] - expected[receiving]).abs().max() <= 1e-10
    assert expected[receiving].abs().max() > 1e-3  # the memory is not trivially zero


def test_a_later_first_position_changes_no_memory_it_computes(make_model, make_batch):
    model = make_model(**PER_TOKEN, use_halting=True)
    ids, lens, _ = make_batch()
    with torch.no_grad():
        h = bridge_states(model, ids)
        everywhere = model.read_hrm(h, lens, 1.0).memory
        windowed = model.read_hrm(h, lens, 1.0, first_position=3).memory
    assert torch.equal(windowed[:, :3], torch.zeros_like(windowed[:, :3]))
    assert (windowed[:, 3:] - everywhere[:, 3:]).abs().max() <= 1e-12


def test_memory_differs_between_answer_positions(make_model, make_batch):
    model = make_model(**PER_TOKEN)
    ids, lens, _ = make_batch()
    with torch.no_grad():
        memory = model.read_hrm(bridge_states(model, ids), lens, 1.0).memory
    row = memory[0, int(lens[0]) - 1:]
    assert (row - row[:1]).abs().amax(-1)[1:].min() > 1e-4


@pytest.mark.parametrize("overrides", [{}, {"use_halting": True}, {"deep_supervision": True}])
def test_changing_a_target_token_changes_no_earlier_logit(make_model, make_batch, overrides):
    model = make_model(**PER_TOKEN, **overrides)
    ids, lens, _ = make_batch()
    base = model(ids, lens).logits
    for t in (int(lens.max()), 15, 18):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % model.cfg.vocab_size
        logits = model(changed, lens).logits
        assert torch.equal(logits[:, :t], base[:, :t])
        assert not torch.allclose(logits[:, t:], base[:, t:])


def test_each_rows_first_answer_token_reaches_no_earlier_logit(make_model, make_batch):
    """Per row, the token its last prompt position predicts: the tightest place for a leak (the
    batch's longer prompts keep that position inside the prompt slice the latents read)."""
    model = make_model(**PER_TOKEN, use_halting=True)
    ids, lens, _ = make_batch()
    base = model(ids, lens).logits
    for r, n in enumerate(lens.tolist()):
        changed = ids.clone()
        changed[r, n] = (changed[r, n] + 1) % model.cfg.vocab_size
        logits = model(changed, lens).logits
        assert torch.equal(logits[r, :n], base[r, :n]), r
        assert not torch.allclose(logits[r, n:], base[r, n:])


def test_gate_and_halting_read_the_prompt_and_the_position_only(make_model, make_batch):
    model = make_model(**PER_TOKEN, use_halting=True)
    ids, lens, _ = make_batch()
    with torch.no_grad():
        base = model.read_hrm(bridge_states(model, ids), lens, 1.0)
        later = ids.clone()
        later[:, 16:] = (later[:, 16:] + 1) % model.cfg.vocab_size
        other = model.read_hrm(bridge_states(model, later), lens, 1.0)
    assert torch.equal(base.gate, other.gate)
    assert torch.equal(base.memory[:, :16], other.memory[:, :16])
    assert torch.equal(base.halt_probs[:, :16], other.halt_probs[:, :16])
    assert not torch.allclose(base.memory[:, 16:], other.memory[:, 16:])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_closed_gate_equals_the_decoder_without_hrm_exactly(make_model, make_batch, dtype):
    model = make_model(dtype=dtype, **PER_TOKEN, use_halting=True, deep_supervision=True)
    plain = HRMMamba2LM(ModelConfig(**{**asdict(model.cfg), "hrm_enabled": False})).to(dtype)
    plain.load_state_dict(model.state_dict(), strict=False)
    ids, lens, labels = make_batch()
    a = model(ids, lens, labels, gate_scale=0.0)
    b = plain(ids, lens, labels)
    assert torch.equal(a.logits, b.logits)
    assert torch.equal(a.loss, b.loss) and a.ds_loss == 0 and a.halt_loss == 0


@pytest.mark.parametrize("overrides", [{}, {"use_halting": True, "h_cycles": 3, "l_steps": 1}])
def test_step_logits_equal_full_forward(make_model, overrides):
    model = make_model(dtype=torch.float32, **PER_TOKEN, **overrides).eval()
    ids = torch.randint(0, model.cfg.vocab_size, (2, 21), generator=torch.Generator().manual_seed(1))
    prompt = 6
    full = model(ids, torch.tensor([prompt, prompt]), gate_scale=0.7).logits
    logits, state = model.prefill(ids[:, :prompt], gate_scale=0.7)
    stepped = [logits] + [model.step(ids[:, t], state) for t in range(prompt, ids.shape[1])]
    stepped = torch.stack(stepped, 1)
    assert (stepped - full[:, prompt - 1:]).abs().max() <= 1e-5
    closed = model(ids, torch.tensor([prompt, prompt]), gate_scale=0.0).logits
    assert (full[:, prompt - 1:] - closed[:, prompt - 1:]).abs().max() > 1e-3  # memory matters


def test_greedy_generate_matches_teacher_forced_argmax(make_model):
    model = make_model(dtype=torch.float64, **PER_TOKEN, use_halting=True).eval()
    prompt = torch.randint(0, model.cfg.vocab_size, (2, 5), generator=torch.Generator().manual_seed(3))
    out = model.generate(prompt, max_new_tokens=9)
    logits = model(out, torch.tensor([5, 5])).logits
    assert torch.equal(logits[:, 4:-1].argmax(-1), out[:, 5:])


def nonzero_grad(module) -> bool:
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


@pytest.mark.parametrize("overrides", [{}, {"deep_supervision": True}])
def test_open_gate_sends_gradient_to_every_hrm_part(make_model, make_batch, overrides):
    model = make_model(**PER_TOKEN, use_halting=True, **overrides)
    ids, lens, labels = make_batch()
    model(ids, lens, labels, gate_scale=0.5).loss.backward()
    core = model.core
    for part in (model.pool, core.inject, core.key, core.value, core.L, core.H,
                 model.bridge.memory_proj, model.bridge.gate_head, model.halting):
        assert nonzero_grad(part), part


def test_closed_gate_sends_no_gradient_to_hrm(make_model, make_batch):
    model = make_model(**PER_TOKEN, use_halting=True, deep_supervision=True)
    ids, lens, labels = make_batch()
    model(ids, lens, labels, gate_scale=0.0).loss.backward()
    assert all(p.grad is None for part in (model.pool, model.core, model.bridge, model.halting)
               for p in part.parameters())


def test_one_step_rule_holds_per_position(make_model, make_batch):
    model = make_model(**PER_TOKEN, h_cycles=3, l_steps=2)
    calls = {"L": [], "H": []}
    for name in calls:
        getattr(model.core, name).register_forward_hook(
            lambda _m, _i, out, name=name: calls[name].append(out.requires_grad))
    ids, lens, labels = make_batch()
    model(ids, lens, labels).loss.backward()
    assert calls["L"] == [False] * 5 + [True] and calls["H"] == [False] * 2 + [True]


def test_whole_cycle_gradient_reaches_every_L_update_of_a_supervised_cycle(make_model, make_batch):
    """TRM's rule on this design: with deep supervision every cycle is a segment and each of its
    L updates carries gradient; without, only the last cycle's."""
    for overrides, expected_L, expected_H in (
            ({}, [False] * 4 + [True] * 2, [False] * 2 + [True]),
            ({"deep_supervision": True}, [True] * 6, [True] * 3)):
        model = make_model(**PER_TOKEN, h_cycles=3, l_steps=2, hrm_whole_cycle_grad=True, **overrides)
        calls = {"L": [], "H": []}
        for name in calls:
            getattr(model.core, name).register_forward_hook(
                lambda _m, _i, out, name=name: calls[name].append(out.requires_grad))
        ids, lens, labels = make_batch()
        model(ids, lens, labels).loss.backward()
        assert calls["L"] == expected_L and calls["H"] == expected_H, overrides


def test_halting_penalty_and_diagnostics_average_over_receiving_positions(make_model, make_batch):
    model = make_model(**PER_TOKEN, use_halting=True, h_cycles=3, l_steps=1, halt_target=0.7)
    ids, lens, labels = make_batch()
    out = model(ids, lens, labels)
    with torch.no_grad():
        readout = model.read_hrm(bridge_states(model, ids), lens, 1.0)
    sums = []
    for r, n in enumerate(lens.tolist()):
        for pos in range(n - 1, ids.shape[1]):
            sums.append(float(readout.halt_probs[r, pos].sum()))
    expected = sum((s - 0.7) ** 2 for s in sums) / len(sums)
    assert abs(out.halt_penalty.item() - expected) <= 1e-10
    assert abs(out.diagnostics["halt_sum_mean"] - sum(sums) / len(sums)) <= 1e-10
    assert out.diagnostics["halt_sum_min"] == pytest.approx(min(sums), abs=1e-12)
    assert out.diagnostics["halt_sum_max"] == pytest.approx(max(sums), abs=1e-12)


def test_checkpoint_loads_across_switches_and_not_across_designs(make_model, make_config, make_batch):
    trained = make_model(**PER_TOKEN)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer)
    other = HRMMamba2LM(make_config(**PER_TOKEN, use_halting=True, deep_supervision=True, h_cycles=4)).double()
    other.load_state_dict(state)  # strict
    ids, lens, labels = make_batch()
    assert torch.isfinite(other(ids, lens, labels).loss)
    with pytest.raises(RuntimeError):
        HRMMamba2LM(make_config()).double().load_state_dict(state)


def test_unknown_design_is_refused_by_name(make_config):
    with pytest.raises(ValueError, match="hrm_design"):
        make_config(hrm_design="slots")


def test_bf16_autocast_forward_backward_is_finite(make_model, make_batch):
    model = make_model(dtype=torch.float32, **PER_TOKEN, use_halting=True, deep_supervision=True)
    ids, lens, labels = make_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(ids, lens, labels, gate_scale=1.0)
    out.loss.backward()
    assert torch.isfinite(out.loss)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_counted_flops_equal_the_written_formula(make_model, make_batch):
    """The ablation's FLOP counter (torch's formulas over the operators run) sees every matrix
    product of the design: its count for one forward equals the formula in token_hrm.py."""
    from trainer.ablate.cost import _CountFlops
    from trainer.model.token_hrm import per_token_forward_flops

    model = make_model(**PER_TOKEN, hrm_layers=2, h_cycles=3, l_steps=2)
    ids, _, _ = make_batch()
    lens = torch.full((3,), 9)
    with torch.no_grad():
        h = bridge_states(model, ids)
        counter = _CountFlops()
        with counter:
            model.read_hrm(h, lens, 1.0, first_position=8)
    assert counter.total == per_token_forward_flops(model.cfg, 3, 9, ids.shape[1] - 8)
