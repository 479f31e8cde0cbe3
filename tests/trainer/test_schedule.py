"""LR and gate schedules are pure functions of the step with the documented shape, and the
learning rate's edges are exact: one peak step, the minimum exactly at the last step."""

from __future__ import annotations

import itertools
import math

import pytest

from trainer.schedule import gate_scale, lr_at


def test_cosine_warmup_then_decay_to_min_ratio():
    lrs = [lr_at(s, 1e-3, total_steps=100, warmup_steps=10, scheduler="cosine", min_ratio=0.05) for s in range(100)]
    assert lrs[0] == pytest.approx(1e-4) and lrs[9] == 1e-3
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:10]))  # warmup rises
    assert all(a > b for a, b in zip(lrs[9:], lrs[10:]))  # then falls at every step
    assert lrs[9 + 45] == pytest.approx(1e-3 * (0.05 + 0.95 * 0.5))  # half way from peak to end
    assert lrs[99] == 1e-3 * 0.05
    assert lr_at(10_000, 1e-3, 100, 10, "cosine", 0.05) == 1e-3 * 0.05  # clamps after the end


def test_linear_and_constant():
    assert lr_at(59, 1.0, 110, 10, "linear", 0.0) == pytest.approx(0.5)  # 50 of 100 decay steps
    assert lr_at(109, 1.0, 110, 10, "linear", 0.2) == 0.2
    assert [lr_at(s, 2.0, 50, 0, "constant") for s in (0, 25, 49)] == [2.0, 2.0, 2.0]
    with pytest.raises(ValueError):
        lr_at(20, 1.0, 100, 0, "step")


@pytest.mark.parametrize("scheduler,total,warmup,min_ratio,base", [
    case for case in itertools.product(("cosine", "linear"), (1, 2, 3, 7, 100, 308212), (0, 1, 2, 5, 4000),
                                       (0.0, 0.05, 0.1, 1 / 3), (2.5e-4, 3e-3)) if case[2] <= case[1]])
def test_peak_at_exactly_one_step_and_the_end_exactly_at_the_minimum(scheduler, total, warmup, min_ratio, base):
    peak, last = max(0, warmup - 1), total - 1
    # every step of a short run; around the peak and the end of a long one
    steps = sorted(set(range(total)) if total <= 10_000 else
                   set(range(peak + 3)) | set(range(total // 2 - 2, total // 2 + 2)) | set(range(last - 2, last + 1)))
    lrs = [lr_at(s, base, total, warmup, scheduler, min_ratio) for s in steps]
    assert [s for s, v in zip(steps, lrs) if v == base] == [peak]  # the peak, once
    rising = [v for s, v in zip(steps, lrs) if s <= peak]
    falling = [v for s, v in zip(steps, lrs) if s >= peak]
    assert all(a < b for a, b in zip(rising, rising[1:])) and all(a > b for a, b in zip(falling, falling[1:]))
    if last > peak:
        assert lrs[-1] == base * min_ratio  # exactly the minimum, at the last step only
        assert lr_at(total + 5, base, total, warmup, scheduler, min_ratio) == base * min_ratio


def test_gate_closed_during_warmup_then_ramps():
    values = [gate_scale(s, warmup_steps=5, ramp_steps=4) for s in range(12)]
    assert values[:5] == [0.0] * 5
    assert values[5:10] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.0])
    assert gate_scale(5, 5, 0) == 1.0 and gate_scale(0, 0, 0) == 1.0
    assert gate_scale(0, 0, 3) == pytest.approx(1 / 3)
    assert not math.isnan(gate_scale(10**9, 5, 4))
