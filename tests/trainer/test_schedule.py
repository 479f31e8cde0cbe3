"""LR and gate schedules are pure functions of the step with the documented shape."""

from __future__ import annotations

import math

import pytest

from trainer.schedule import gate_scale, lr_at


def test_cosine_warmup_then_decay_to_min_ratio():
    lrs = [lr_at(s, 1e-3, total_steps=100, warmup_steps=10, scheduler="cosine", min_ratio=0.05) for s in range(101)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == pytest.approx(1e-3)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))  # warmup rises
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then never rises
    assert lrs[55] == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))  # half way: mid point of the cosine
    assert lrs[100] == pytest.approx(5e-5)
    assert lr_at(10_000, 1e-3, 100, 10, "cosine", 0.05) == pytest.approx(5e-5)  # clamps after the end


def test_linear_and_constant():
    assert lr_at(60, 1.0, 110, 10, "linear", 0.0) == pytest.approx(0.5)
    assert lr_at(110, 1.0, 110, 10, "linear", 0.2) == pytest.approx(0.2)
    assert [lr_at(s, 2.0, 50, 0, "constant") for s in (0, 25, 49)] == [2.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        lr_at(20, 1.0, 100, 0, "step")


def test_gate_closed_during_warmup_then_ramps():
    values = [gate_scale(s, warmup_steps=5, ramp_steps=4) for s in range(12)]
    assert values[:5] == [0.0] * 5
    assert values[5:10] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert gate_scale(5, 5, 0) == 1.0 and gate_scale(0, 0, 0) == 1.0
    assert gate_scale(0, 0, 3) == pytest.approx(1 / 3)
    assert not math.isnan(gate_scale(10**9, 5, 4))
