"""Config round trips, validation, presets, parameter counts, and checkpoints across switches."""

from __future__ import annotations

import io
import json
from dataclasses import asdict

import pytest
import torch

from trainer.model import HRMMamba2LM, ModelConfig, format_parameter_summary, parameter_summary


def test_config_round_trips_through_asdict_and_json(make_config):
    cfg = make_config(use_halting=True, bridge_layer=1)
    again = ModelConfig(**json.loads(json.dumps(asdict(cfg))))
    assert again == cfg and again.bridge_index == 1


@pytest.mark.parametrize("bad, field", [
    ({"headdim": 7}, "headdim"),
    ({"ngroups": 3}, "ngroups"),
    ({"bridge_layer": 4}, "bridge_layer"),
    ({"h_cycles": 0}, "h_cycles"),
    ({"hrm_heads": 3}, "hrm_heads"),
    ({"halt_epsilon": 1.0}, "halt_epsilon"),
])
def test_invalid_configs_name_the_field(make_config, bad, field):
    with pytest.raises(ValueError, match=field):
        make_config(**bad)


def test_switches_and_cycle_counts_add_no_parameters(make_config):
    shapes = set()
    for overrides in ({}, {"use_halting": True, "deep_supervision": True},
                      {"h_cycles": 5, "l_steps": 3, "hrm_bptt_steps": 2}):
        model = HRMMamba2LM(make_config(**overrides))
        shapes.add(tuple((k, tuple(v.shape)) for k, v in model.state_dict().items()))
    assert len(shapes) == 1


def test_stage_a_checkpoint_resumes_with_auxiliaries_and_other_cycles(make_model, make_batch):
    stage_a = make_model(dtype=torch.float64)
    buffer = io.BytesIO()
    torch.save({"config": asdict(stage_a.cfg), "model": stage_a.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer)
    cfg = ModelConfig(**{**saved["config"], "use_halting": True, "deep_supervision": True})
    stage_b = HRMMamba2LM(cfg).double()
    stage_b.load_state_dict(saved["model"])  # strict
    ids, lens, labels = make_batch()
    stage_b.set_cycles(4, 1)
    out = stage_b(ids, lens, labels)
    assert torch.isfinite(out.loss) and out.diagnostics["expected_cycles"] <= 4
    stage_b.set_cycles(stage_a.cfg.h_cycles, stage_a.cfg.l_steps)
    with pytest.raises(ValueError):
        stage_b.set_cycles(0, 1)


def test_set_cycles_changes_the_computation(make_model, make_batch):
    model = make_model()
    ids, lens, _ = make_batch()
    two = model(ids, lens).logits
    model.set_cycles(3, 2)
    assert model.cfg.h_cycles == 3
    assert not torch.allclose(model(ids, lens).logits, two)


def test_parameter_summary_counts_every_parameter_once(make_config):
    model = HRMMamba2LM(make_config())
    counts = parameter_summary(model)
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert "other" not in counts  # every parameter belongs to a named component
    assert counts["decoder_head"] == model.cfg.d_model  # tied head: only norm_f's weight
    assert counts["hrm_total"] == counts["total"] - counts["embedding"] - counts["decoder_layers"] \
        - counts["decoder_head"]
    assert model.num_parameters() == counts["total"]
    assert "total" in format_parameter_summary(counts)
    plain = HRMMamba2LM(make_config(hrm_enabled=False))
    assert parameter_summary(plain)["hrm_total"] == 0


def test_presets_have_the_sizes_they_claim():
    demo = HRMMamba2LM(ModelConfig.demo(vocab_size=4096)).num_parameters()
    big = HRMMamba2LM(ModelConfig.size_50m()).num_parameters()  # ~1 s; "meta" would cost more
    assert demo < 2_000_000
    assert 45e6 < big < 55e6
