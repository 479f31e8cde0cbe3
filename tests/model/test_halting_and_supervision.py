"""Halting distribution, halt penalty, deep supervision and the diagnostics the trainer logs."""

from __future__ import annotations

import torch

from trainer.model.bridge import add_memory
from trainer.model.halting import expected_cycles, halting_distribution, halting_penalty
from trainer.model.lm import DIAGNOSTIC_KEYS, token_cross_entropy


def test_halting_distribution_is_act_with_remainder_on_the_last_cycle():
    lam = torch.tensor([[0.5, 0.5, 0.9], [1.0, 0.3, 0.3], [0.0, 0.0, 0.0]], dtype=torch.float64)
    p = halting_distribution(lam)
    assert torch.allclose(p, torch.tensor([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]],
                                          dtype=torch.float64))
    assert torch.allclose(expected_cycles(p), torch.tensor([1.75, 1.0, 3.0], dtype=torch.float64))
    assert torch.isclose(halting_penalty(lam, 1.0),
                         torch.tensor((0.9**2 + 0.6**2 + 1.0) / 3, dtype=torch.float64))


def test_halting_weights_the_memory_and_scales_the_penalty_by_the_gate(make_model, make_batch):
    model = make_model(use_halting=True, h_cycles=3, l_steps=1, halting_weight=0.01,
                       halt_target=1.0)
    ids, lens, labels = make_batch()
    h = model.decoder.run(model.decoder.embed(ids), 0, model.cfg.bridge_index)
    readout = model.read_hrm(h, lens, 0.5)
    states = list(model.core.cycles(model.pool(h, lens), 3, 1, every_cycle=True))
    memories = torch.stack([model.bridge.memory(z) for z in states], 1)
    expected = (readout.halt_dist.unsqueeze(-1) * memories).sum(1)
    assert (readout.memory - expected).abs().max() <= 1e-12
    assert torch.allclose(readout.halt_dist.sum(1), torch.ones(3, dtype=torch.float64))

    out = model(ids, lens, labels, gate_scale=0.5)
    penalty = 0.01 * readout.gate.mean() * halting_penalty(readout.halt_probs, 1.0)
    assert torch.isclose(out.halt_loss, penalty, rtol=1e-12)
    assert torch.isclose(out.loss, out.lm_loss + out.halt_loss)
    sums = readout.halt_probs.sum(1)
    d = out.diagnostics
    assert abs(d["halt_sum_mean"] - sums.mean().item()) < 1e-9
    assert abs(d["halt_sum_min"] - sums.min().item()) < 1e-9
    assert abs(d["halt_sum_max"] - sums.max().item()) < 1e-9
    assert abs(d["expected_cycles"] - expected_cycles(readout.halt_dist).mean().item()) < 1e-9
    assert abs(d["gate_mean"] - readout.gate.mean().item()) < 1e-9
    assert d["gate_min"] <= d["gate_mean"] <= d["gate_max"] <= 0.5


def test_inference_stops_cycling_once_halted_within_epsilon(make_model, make_batch):
    model = make_model(use_halting=True, h_cycles=4, l_steps=1, halt_epsilon=0.05)
    with torch.no_grad():
        model.halting.proj.bias.fill_(5.0)  # lambda ~ 0.99: halts after the first cycle
    ids, lens, _ = make_batch()
    h = model.decoder.run(model.decoder.embed(ids), 0, model.cfg.bridge_index)
    full = model.read_hrm(h, lens, 1.0)  # training mode: every cycle runs
    model.eval()
    early = model.read_hrm(h, lens, 1.0)
    assert full.halt_probs.shape[1] == 4 and early.halt_probs.shape[1] == 1
    bound = 0.05 * 2 * torch.stack([model.bridge.memory(z) for z in model.core.cycles(
        model.pool(h, lens), 4, 1)]).norm(dim=-1).max()
    assert (early.memory - full.memory).norm(dim=-1).max() <= bound


def test_deep_supervision_decodes_each_intermediate_cycle_through_the_same_gate(make_model, make_batch):
    model = make_model(deep_supervision=True, ds_weight=0.3, h_cycles=3, l_steps=2)
    ids, lens, labels = make_batch()
    out = model(ids, lens, labels, gate_scale=0.8)
    h = model.decoder.run(model.decoder.embed(ids), 0, model.cfg.bridge_index)
    readout = model.read_hrm(h, lens, 0.8)
    assert len(readout.cycle_memories) == 2
    losses = [token_cross_entropy(model.decoder.logits(model.decoder.run(
        add_memory(h, readout.gate[:, None] * m, lens), model.cfg.bridge_index,
        model.cfg.n_layers)), labels) for m in readout.cycle_memories]
    assert torch.isclose(out.ds_loss, torch.stack(losses).mean())
    assert torch.isclose(out.loss, out.lm_loss + 0.3 * out.ds_loss + out.halt_loss)
    assert out.ds_loss != out.lm_loss


def test_switched_off_terms_are_zero_tensors(make_model, make_batch):
    model = make_model()
    ids, lens, labels = make_batch()
    out = model(ids, lens, labels)
    assert out.ds_loss.dim() == 0 and out.ds_loss == 0 and out.halt_loss == 0
    assert torch.equal(out.loss, out.lm_loss)
    assert set(out.diagnostics) == set(DIAGNOSTIC_KEYS)
    assert all(isinstance(v, float) for v in out.diagnostics.values())
    assert out.diagnostics["expected_cycles"] == model.cfg.h_cycles
    unlabelled = model(ids, lens)
    assert unlabelled.loss is None and unlabelled.lm_loss is None
    assert torch.equal(unlabelled.logits, out.logits)


def test_ignored_labels_do_not_count():
    logits = torch.randn(2, 4, 7)
    labels = torch.tensor([[1, -100, 2, -100], [-100, -100, -100, 3]])
    expected = torch.nn.functional.cross_entropy(logits.reshape(-1, 7), labels.reshape(-1))
    assert torch.isclose(token_cross_entropy(logits, labels), expected)
    assert token_cross_entropy(logits, torch.full((2, 4), -100)) == 0


def lm_batch(make_batch):
    """Every next-token position labelled (loss_on_prompt = true), so some labelled positions lie
    before prompt_len - 1 and never receive memory."""
    ids, lens, _ = make_batch()
    return ids, lens, torch.cat([ids[:, 1:], torch.full((ids.shape[0], 1), -100)], dim=1)


def test_deep_supervision_scores_exactly_the_positions_that_receive_memory(make_model, make_batch):
    model = make_model(deep_supervision=True, ds_weight=0.3, h_cycles=3, l_steps=1)
    ids, lens, labels = lm_batch(make_batch)
    out = model(ids, lens, labels, gate_scale=0.8)
    receiving = torch.arange(ids.shape[1])[None, :] >= (lens[:, None] - 1)
    assert (~receiving & (labels != -100)).sum() > 0, "the batch must have prompt positions to leave out"
    memory_labels = labels.masked_fill(~receiving, -100)
    h = model.decoder.run(model.decoder.embed(ids), 0, model.cfg.bridge_index)
    readout = model.read_hrm(h, lens, 0.8)
    per_cycle = [token_cross_entropy(model.decoder.logits(model.decoder.run(
        add_memory(h, readout.gate[:, None] * m, lens), model.cfg.bridge_index, model.cfg.n_layers)),
        memory_labels) for m in readout.cycle_memories]
    assert torch.isclose(out.ds_loss, torch.stack(per_cycle).mean(), rtol=1e-12)
    # the log's reference: the main decode's loss on those same positions, and on all of them
    assert torch.isclose(out.lm_mem_loss, token_cross_entropy(out.logits, memory_labels), rtol=1e-12)
    assert torch.isclose(out.lm_loss, token_cross_entropy(out.logits, labels), rtol=1e-12)
    assert out.lm_mem_loss != out.lm_loss

    # the prompt positions' targets do not reach ds_loss at all
    scrambled = labels.clone()
    scrambled[~receiving & (labels != -100)] = 0
    again = model(ids, lens, scrambled, gate_scale=0.8)
    assert torch.equal(again.ds_loss, out.ds_loss) and torch.equal(again.lm_mem_loss, out.lm_mem_loss)
    assert again.lm_loss != out.lm_loss


def test_halting_penalty_trains_the_halting_head_only(make_model, make_batch):
    """The penalty regularises a diagnostic sum: it must not reshape the HRM core, the pool or the
    decoder's residual stream below the bridge (docs/training.md)."""
    model = make_model(use_halting=True, h_cycles=3, l_steps=1, halting_weight=1.0, halt_target=0.2)
    ids, lens, labels = make_batch()
    out = model(ids, lens, labels, gate_scale=1.0)
    assert out.halt_loss > 0
    out.halt_loss.backward()
    assert model.halting.proj.weight.grad.abs().sum() > 0
    others = [p for name, p in model.named_parameters() if not name.startswith("halting.")]
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in others)
    model.zero_grad(set_to_none=True)
    out = model(ids, lens, labels, gate_scale=1.0)
    out.lm_loss.backward()  # the LM loss still teaches the head through the halting-weighted memory
    assert model.halting.proj.weight.grad.abs().sum() > 0 and model.core.H.blocks[0].mlp.down.weight.grad.abs().sum() > 0


def test_raw_gate_is_logged_beside_the_scheduled_gate(make_model, make_batch):
    model = make_model()
    ids, lens, labels = make_batch()
    closed = model(ids, lens, labels, gate_scale=0.0).diagnostics
    half = model(ids, lens, labels, gate_scale=0.5).diagnostics
    assert closed["gate_mean"] == 0.0 and 0.0 < closed["gate_raw_mean"] < 1.0
    assert half["gate_raw_mean"] == closed["gate_raw_mean"]
    assert abs(half["gate_mean"] - 0.5 * half["gate_raw_mean"]) < 1e-12
    assert closed["gate_raw_min"] <= closed["gate_raw_mean"] <= closed["gate_raw_max"]
