"""Means and 95% intervals over seeds and items, for one arm and for an arm minus the base.

An arm's score on an item-level metric is a matrix ``x[s, i]`` (seed s, item i; 1 = correct). Its
estimate is the mean over both. Two sources of noise move it: which seeds were trained (the
training run's luck) and which items were drawn (the holdout's luck). The half-width combines
them as independent terms::

    seed term  t(0.975, S-1) * sd_s(mean_i x[s, i]) / sqrt(S)     (0 when S = 1: not estimable)
    item term  1.96          * sd_i(mean_s x[s, i]) / sqrt(N)     (binomial-like over the items)
    half-width = sqrt(seed term^2 + item term^2)

Each term also carries the seed-by-item noise, so the sum is slightly conservative. A difference
from the base arm applies the same formula to ``d[s, i] = x_arm[s, i] - x_base[s, i]``, paired over
items (every run answers the same items) and over seeds (same seed = same data order and the same
initial draw of the shared weights' generator). Arms that are identical by construction give
``d = 0`` and the interval [0, 0]. Run-level metrics (a final validation loss) have one number per
seed and get the seed term only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# two-sided 95% Student t quantiles, df = 1..30 (above 30 the normal 1.96 is within 2%)
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)
Z975 = 1.959964


def t975(df: int) -> float:
    if df < 1:
        raise ValueError("t quantile needs df >= 1")
    return _T975[df - 1] if df <= len(_T975) else Z975


@dataclass(frozen=True)
class Estimate:
    mean: float
    lo: float
    hi: float
    seeds: int
    items: int  # 0 for run-level metrics
    seed_term: float
    item_term: float

    @property
    def half_width(self) -> float:
        return (self.hi - self.lo) / 2

    def covers(self, value: float) -> bool:
        return self.lo <= value <= self.hi

    def as_dict(self) -> dict:
        return {"mean": self.mean, "lo": self.lo, "hi": self.hi, "seeds": self.seeds, "items": self.items,
                "seed_term": self.seed_term, "item_term": self.item_term}


def _sd(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if values.size > 1 else 0.0


def estimate(x: np.ndarray) -> Estimate:
    """Mean and 95% interval of a (seeds x items) matrix, or of a vector of per-seed values."""
    x = np.asarray(x, dtype=float)
    if x.ndim == 1:
        x, items = x[:, None], 0
    else:
        items = x.shape[1]
    if x.size == 0:
        raise ValueError("no values")
    seeds = x.shape[0]
    per_seed = x.mean(axis=1)
    seed_term = t975(seeds - 1) * _sd(per_seed) / math.sqrt(seeds) if seeds > 1 else 0.0
    item_term = Z975 * _sd(x.mean(axis=0)) / math.sqrt(items) if items > 1 else 0.0
    m = float(x.mean())
    hw = math.hypot(seed_term, item_term)
    return Estimate(m, m - hw, m + hw, seeds, items, seed_term, item_term)


def difference(x_arm: np.ndarray, x_base: np.ndarray) -> Estimate:
    """``arm - base``, paired over seeds (rows) and items (columns): both must have the same shape."""
    a, b = np.asarray(x_arm, dtype=float), np.asarray(x_base, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"unpaired shapes {a.shape} and {b.shape}: the arms must share seeds and items")
    return estimate(a - b)
