"""The plan's arithmetic: which source each position draws from, which tier, which row.

Three pure functions, each deterministic and vectorised (docs/mixing.md derives them):

* :func:`source_schedule` — position → source, so that every run of ``window`` consecutive
  positions holds source *i* ``floor(window·wᵢ)`` or ``floor(window·wᵢ) + 1`` times.
* :func:`tier_sequence` — a source's k-th draw → tier, following fixed or piecewise-linear tier
  weights over the fraction of the plan.
* :func:`epoch_draws` — k-th draw of a pool → row: one seeded permutation per epoch, so a row is
  repeated only after every row of its pool was seen.
* :func:`token_schedule` — with ``weight_by = "tokens"``: positions → source so that each source's
  delivered tokens track its weight (weighted fair queueing over the sources' draw lengths).
"""

from __future__ import annotations

import hashlib
import json
from typing import Sequence

import numpy as np

from corpus.mixing.manifest import MAX_TIER, TierKnot

GOLDEN = 0.6180339887498949


def window_quotas(weights: Sequence[float], window: int) -> tuple[np.ndarray, np.ndarray]:
    """Per source the fixed count ``m = floor(window·w)`` and the fraction ``f`` of one more slot.

    ``sum(f)`` is the integer number of "extra" slots each window hands out on rotation.
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    q = w * window
    m = np.floor(q + 1e-9 * window).astype(np.int64)
    f = np.clip(q - m, 0.0, None)
    r = int(window - m.sum())
    if r < 0:  # only possible through float noise at an exact integer; take the slot back
        raise AssertionError(f"quota rounding overshot the window: {m.tolist()} > {window}")
    if r and f.sum() > 0:
        f = f * (r / f.sum())
    return m, f


def base_pattern(counts: Sequence[int]) -> np.ndarray:
    """A sequence holding letter ``l`` exactly ``counts[l]`` times, interleaved evenly.

    Largest-deficit order (Megatron's blending rule): at step t choose the letter whose
    ``counts·(t+1)/n − used`` is largest, ties to the lowest letter.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = int(counts.sum())
    rate = counts / n
    used = np.zeros(len(counts))
    out = np.empty(n, dtype=np.int64)
    for t in range(n):
        letter = int(np.argmax(rate * (t + 1) - used))
        out[t] = letter
        used[letter] += 1
    return out


def source_schedule(weights: Sequence[float], n: int, window: int) -> np.ndarray:
    """Source index for each of ``n`` positions (int16).

    Every window is the same ``base_pattern`` of fixed slots (source *i* in ``m[i]`` of them) plus
    ``r`` extra slots. Extra slot k of window b goes to the source whose interval of the
    wrap-around layout ``[F[i-1], F[i])`` (F = cumsum(f), McNaughton's rule) contains
    ``k + φ_b`` with ``φ_b = frac(b·β)``. A source therefore gets at most one extra per window,
    and with ``β ≤ 1 − max f`` never one late in a window and another early in the next, so any
    ``window`` consecutive positions hold ``m[i]`` or ``m[i] + 1`` of source *i*.
    """
    k_sources = len(weights)
    if n <= 0:
        return np.zeros(0, dtype=np.int16)
    m, f = window_quotas(weights, window)
    r = int(window - m.sum())
    extra = k_sources  # the letter marking an extra slot in the base pattern
    pattern = base_pattern(list(m) + [r])
    blocks = -(-n // window)
    out = np.tile(pattern, blocks)[:n]
    if r:
        slots = np.flatnonzero(pattern == extra)  # r offsets inside a window
        order, beta = extra_layout(f)
        bounds = np.cumsum(f[order])
        bounds[-1] = float(r)
        phase = np.modf(np.arange(blocks, dtype=np.float64) * beta)[0]
        points = np.arange(r, dtype=np.float64)[None, :] + phase[:, None]  # blocks × r
        at = np.searchsorted(bounds, points, side="right")
        at = np.minimum(at, int(np.flatnonzero(f[order] > 0).max()))
        positions = (np.arange(blocks)[:, None] * window + slots[None, :]).ravel()
        keep = positions < n
        out[positions[keep]] = order[at.ravel()[keep]]
    return out.astype(np.int16)


def extra_layout(f: np.ndarray, tries: int = 32) -> tuple[np.ndarray, float]:
    """Order of the sources on the wrap-around layout, and the phase step β.

    A source whose interval straddles an integer holds two extra slots (at different phases);
    β ≤ 1 − f of every such source keeps it from taking the later slot in one window and the
    earlier one in the next. β is ``GOLDEN·(1 − max straddling f)``: we try a few orders and keep
    the one whose straddlers are smallest, so β stays large and the phases spread fast.
    """
    k = len(f)
    candidates = [np.arange(k), np.argsort(f, kind="stable"), np.argsort(-f, kind="stable")]
    rng = np.random.Generator(np.random.PCG64(0))
    candidates += [rng.permutation(k) for _ in range(tries)]
    best, best_bound = candidates[0], -1.0
    for order in candidates:
        ends = np.cumsum(f[order])
        starts = ends - f[order]
        straddle = np.floor(starts + 1e-12) < np.ceil(ends - 1e-12) - 1
        bound = 1.0 - float(f[order][straddle].max()) if straddle.any() else 1.0
        if bound > best_bound + 1e-12:
            best, best_bound = order, bound
    return best, GOLDEN * max(1e-6, best_bound)


def tier_weight_matrix(knots: Sequence[TierKnot], x: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Tier weights at plan fractions ``x``: tiers and a ``len(x) × tiers`` matrix (rows sum to 1).

    Between knots the weights are linear in ``x``; before the first and after the last knot they
    are held constant. Each knot sums to 1, so every interpolated row does too.
    """
    tiers = sorted({t for k in knots for t in k.weights})
    ats = np.array([k.at for k in knots])
    columns = []
    for t in tiers:
        values = np.array([k.weights.get(t, 0.0) for k in knots])
        columns.append(np.interp(x, ats, values) if len(knots) > 1 else np.full(len(x), values[0]))
    return tiers, np.stack(columns, axis=1) if columns else np.zeros((len(x), 0))


def tier_sequence(knots: Sequence[TierKnot], x: np.ndarray) -> np.ndarray:
    """The tier of each draw at plan fractions ``x`` (ascending), stratified like the sources.

    E_t(j) = Σ_{j' ≤ j} p_t(x_j') is the expected number of tier-t draws among the first j+1.
    Tier totals are E_t(end) rounded by largest remainder; the k-th tier-t draw is due where
    E_t first reaches k + ½; draws are taken in order of due index (ties: lower tier first).
    """
    d = len(x)
    tiers, p = tier_weight_matrix(knots, x)
    expected = np.cumsum(p, axis=0)
    totals = expected[-1] if d else np.zeros(len(tiers))
    counts = np.floor(totals + 1e-9).astype(np.int64)
    short = d - int(counts.sum())
    if short > 0:
        order = np.argsort(-(totals - counts), kind="stable")
        counts[order[:short]] += 1
    due_parts, tier_parts = [], []
    for col, (t, c) in enumerate(zip(tiers, counts)):
        if c == 0:
            continue
        # draws due by index j: #{k : k + ½ <= E_t(j)} = floor(E_t(j) + ½); each step adds its due ones
        due_by = np.floor(expected[:, col] + 0.5).astype(np.int64)
        due = np.repeat(np.arange(d), np.diff(due_by, prepend=0))[:c]
        if len(due) < c:  # largest remainder granted one more than was due: it goes last
            due = np.concatenate([due, np.full(c - len(due), d - 1)])
        due_parts.append(due)
        tier_parts.append(np.full(c, t, dtype=np.int8))
    due = np.concatenate(due_parts)
    tier = np.concatenate(tier_parts)
    key = due.astype(np.int64) * (MAX_TIER + 1) + tier  # one int key: numpy radix-sorts it
    return tier[np.argsort(key, kind="stable")]


def epoch_draws(n_draws: int, n_rows: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Row index (into a pool of ``n_rows``) and epoch number for each of ``n_draws`` draws.

    Epoch e is a fresh permutation of all rows; the last epoch is cut short.
    """
    if n_draws == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int32)
    epochs = -(-n_draws // n_rows)
    if epochs == 1:
        rows = rng.permutation(n_rows)[:n_draws]
    else:
        rows = rng.permuted(np.tile(np.arange(n_rows, dtype=np.int64), (epochs, 1)), axis=1).ravel()[:n_draws]
    epoch = (np.arange(n_draws, dtype=np.int64) // n_rows).astype(np.int32)
    return rows.astype(np.int64), epoch


def seeded_rng(seed: int, *parts: object) -> np.random.Generator:
    """A generator keyed by the plan seed and names (source, version, split, tier): stable across
    runs, platforms and Python's hash salt."""
    digest = hashlib.sha256(json.dumps([seed, *parts], default=str).encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:16], "little")))


def token_schedule(lengths: Sequence[np.ndarray], weights: Sequence[float], n: int) -> np.ndarray:
    """Source index of each of ``n`` positions when weights are shares of *tokens* (int16).

    Draw k of source i, ``l`` tokens long, is due at virtual time ``(C_i(k-1) + l/2) / w_i`` (C: the
    source's cumulative tokens); positions take the draws in order of due time (ties: the lower
    source). This is weighted fair queueing: at any cut of the sequence each source's tokens are
    within half a row of ``w_i · t``, so any run of positions holds each source's tokens within
    ``max(1, k-1)`` rows of its weight times the run's tokens (k sources; docs/mixing.md).
    ``lengths[i]`` must hold at least as many draws as source i gets (the caller checks).
    """
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    due = [(np.cumsum(l, dtype=np.float64) - np.asarray(l, dtype=np.float64) / 2) / w[i]
           for i, l in enumerate(lengths)]
    source = np.concatenate([np.full(len(l), i, dtype=np.int16) for i, l in enumerate(lengths)])
    order = np.argsort(np.concatenate(due), kind="stable")[:n]  # concatenated by source: ties to the lower
    return source[order]
