"""The plan arithmetic on its own: window stratification, tier schedules, epochs."""

from __future__ import annotations

import numpy as np
import pytest

from corpus.mixing.manifest import TierKnot
from corpus.mixing.stratify import epoch_draws, seeded_rng, source_schedule, tier_sequence


def sliding_counts(schedule: np.ndarray, source: int, window: int) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(schedule == source)])
    return c[window:] - c[:-window]


@pytest.mark.parametrize("weights, window", [
    ([0.9, 0.05, 0.05], 1000),
    ([0.90, 0.05, 0.03, 0.02], 1000),
    ([1 / 3, 1 / 3, 1 / 3], 1000),
    ([0.4999, 0.3, 0.2001], 1000),
    ([0.65, 0.08, 0.06, 0.06, 0.03, 0.03, 0.025, 0.025, 0.02, 0.02], 1000),
    ([0.37, 0.21, 0.29, 0.13], 97),
    ([0.5, 0.5], 1),
])
def test_every_window_holds_each_source_within_one(weights, window):
    n = window * 40 + window // 3
    schedule = source_schedule(weights, n, window)
    assert schedule.dtype == np.int16 and len(schedule) == n
    w = np.asarray(weights) / sum(weights)
    for i, wi in enumerate(w):
        counts = sliding_counts(schedule, i, window)
        target = window * wi
        assert counts.min() >= target - 1 - 1e-9 and counts.max() <= target + 1 + 1e-9, (i, target, counts.min(), counts.max())
        assert counts.max() - counts.min() <= 1


def test_random_weights_and_windows_stay_within_one():
    rng = np.random.default_rng(7)
    for _ in range(40):
        k = int(rng.integers(2, 8))
        w = rng.dirichlet(np.ones(k))
        window = int(rng.choice([10, 333, 1000]))
        n = window * int(rng.integers(5, 30)) + int(rng.integers(0, window))
        schedule = source_schedule(w, n, window)
        for i in range(k):
            counts = sliding_counts(schedule, i, window)
            assert window * w[i] - 1 - 1e-9 <= counts.min() and counts.max() <= window * w[i] + 1 + 1e-9


def test_overall_share_is_exact_for_whole_windows_and_close_otherwise():
    schedule = source_schedule([0.9, 0.05, 0.05], 200_000, 1000)
    assert np.bincount(schedule).tolist() == [180_000, 10_000, 10_000]
    w = np.array([0.4999, 0.3, 0.2001])
    schedule = source_schedule(w, 1_000_000, 1000)
    share = np.bincount(schedule) / len(schedule)
    assert np.all(np.abs(share - w) <= 0.001 * w)


def test_schedule_is_deterministic_and_prefix_stable():
    a = source_schedule([0.5, 0.3, 0.2], 10_000, 1000)
    b = source_schedule([0.5, 0.3, 0.2], 25_000, 1000)
    assert np.array_equal(a, b[:10_000])


def test_tier_sequence_follows_a_schedule():
    knots = [TierKnot(0.0, {0: 1.0}), TierKnot(0.4, {0: 0.6, 3: 0.4}), TierKnot(1.0, {0: 0.6, 3: 0.4})]
    n = 20_000
    x = (np.arange(n) + 0.5) / n
    tiers = tier_sequence(knots, x)
    share3 = [(tiers[i:i + 1000] == 3).mean() for i in range(0, n, 1000)]
    expected = [np.interp((np.arange(i, i + 1000) + 0.5) / n, [0, 0.4, 1], [0, 0.4, 0.4]).mean()
                for i in range(0, n, 1000)]
    assert np.allclose(share3, expected, atol=0.003)
    assert all(b >= a for a, b in zip(share3[:8], share3[1:8]))  # rising over the first 40%
    assert share3[0] < 0.03 and abs(share3[-1] - 0.4) < 0.003
    assert set(np.unique(tiers)) == {0, 3}


def test_fixed_tiers_are_interleaved_exactly():
    tiers = tier_sequence([TierKnot(0.0, {1: 0.25, 2: 0.75})], (np.arange(400) + 0.5) / 400)
    assert np.bincount(tiers, minlength=3).tolist() == [0, 100, 300]
    assert max(len(run) for run in np.split(tiers, np.flatnonzero(np.diff(tiers)) + 1)) <= 3


def test_epoch_draws_use_every_row_before_repeating():
    rows, epoch = epoch_draws(2_500, 1_000, seeded_rng(0, "s"))
    for e in range(2):
        assert sorted(rows[epoch == e].tolist()) == list(range(1_000))
    assert len(set(rows[epoch == 2].tolist())) == 500 and epoch.max() == 2
    again, _ = epoch_draws(2_500, 1_000, seeded_rng(0, "s"))
    other, _ = epoch_draws(2_500, 1_000, seeded_rng(1, "s"))
    assert np.array_equal(rows, again) and not np.array_equal(rows, other)
