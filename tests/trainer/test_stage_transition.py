"""Stage transitions: weights trained with the gate open must not meet a gate that slams back
open in one step. The shipped stage manifests ramp it; a run that does not is warned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trainer.config import CommandLine, load_config
from trainer.resume import Start, source_gate
from trainer.session import hard_reopen_warning

from .conftest import REPO


def train(warmup: int, ramp: int):
    class T:
        hrm_gate_warmup_steps, gate_ramp_steps = warmup, ramp
    return T


def start(state, source="runs/a/best-model/model.pt"):
    return Start("init_from", state, Path(source))


def test_open_source_and_hard_reopen_warns():
    message = hard_reopen_warning(start({"gate_scale": 1.0}), train(1000, 0))
    assert message == ("runs/a/best-model/model.pt was trained with the gate open (scale 1.00); this run closes the "
                       "gate for 1000 steps and reopens it at full strength in one step: set gate_ramp_steps (e.g. 500) "
                       "to ramp it")
    assert "this run opens the gate at full strength" in hard_reopen_warning(start({"gate_scale": 0.4}), train(0, 0))


@pytest.mark.parametrize("state,warmup,ramp", [
    ({"gate_scale": 1.0}, 1000, 500),  # ramped: fine
    ({"gate_scale": 1.0}, 0, 0),  # stays open as the source left it
    ({"gate_scale": 0.0}, 1000, 0),  # the source never opened its gate: nothing to shock
    ({}, 1000, 0),  # nothing known about the source
])
def test_no_warning_when_nothing_jumps(state, warmup, ramp):
    assert hard_reopen_warning(start(state), train(warmup, ramp)) is None


def test_source_gate_of_older_checkpoints_comes_from_their_schedule(tmp_path):
    config = json.dumps({"train": {"hrm_gate_warmup_steps": 8, "gate_ramp_steps": 4}})
    assert source_gate({"step": 8, "config": config}, None) == 0.0  # steps 0-7 closed
    assert source_gate({"step": 10, "config": config}, None) == pytest.approx(0.5)  # step 9: 2/4
    assert source_gate({"step": 500, "config": config}, None) == 1.0
    best = tmp_path / "best-model"
    best.mkdir()
    (best / "config.json").write_text(config)
    assert source_gate({"step": 11}, best / "model.pt") == pytest.approx(0.75)
    assert source_gate({"step": 11}, tmp_path / "elsewhere.pt") is None


@pytest.mark.parametrize("name", ["stageB.toml", "stageB_scienceqa.toml", "stageC.toml"])
def test_stage_manifests_ramp_the_gate(name):
    cfg = load_config(CommandLine(REPO / "manifests" / name))
    assert cfg.train.init_from and cfg.train.gate_ramp_steps >= 100
    assert hard_reopen_warning(start({"gate_scale": 1.0}), cfg.train) is None
