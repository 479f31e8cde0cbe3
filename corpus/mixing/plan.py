"""Resolved mix → deterministic plan files, registered in the catalog.

    manifest ─resolve─► (tokenizer, versions) ─► plan id = hash(payload)
        │
        ├─ per split: source_schedule ─► per source: tier_sequence ─► epoch_draws ─► rows
        ▼
    data/mixes/<mix>/<plan-id>/plan-train.parquet, plan-val.parquet, plan.json   (atomic)
        ▼
    catalog: mixes, mix_components, mix_tier_targets, mix_window_counts, mix_length_counts,
             files(role 'plan'), audit views

A plan row per position: ``plan, split, position, source, version, shard, row, tier, n_tokens,
epoch``; ``n_tokens`` is what the reader delivers, ``min(row length, max_seq_len)``. Rows longer
than ``max_seq_len`` follow each source's overlong policy (corpus.mixing.overlong): skipped rows
are left out of the pool before drawing, cut rows are drawn and cut. The same payload always
gives the same bytes, so the plan id names the content.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from corpus.errors import UserError
from corpus.mixing.manifest import Manifest, load_manifest
from corpus.mixing.overlong import drawable, target_counts
from corpus.mixing.pool import RowPool, load_pool
from corpus.mixing.resolve import Component, ResolvedMix, resolve, tiers_json
from corpus.mixing.stratify import (epoch_draws, seeded_rng, source_schedule, tier_sequence, tier_weight_matrix,
                                    token_schedule)

ROW_GROUP = 65_536
LENGTH_FIELDS = ("overlong", "skipped_rows", "cut_rows", "cut_draws", "cut_tokens", "target_tokens",
                 "skipped_target_tokens", "cut_target_tokens")
SPLITS = ("train", "val")
PLAN_TABLES = (("mixes", "id"), ("mix_components", "mix"), ("mix_tier_targets", "mix"), ("mix_window_counts", "mix"),
               ("mix_length_counts", "mix"))


@dataclass
class SplitStats:
    """What one source contributes to one split."""

    rows: int = 0  # rows drawn from (after skipping the overlong ones)
    draws: int = 0
    epochs: float = 0.0  # draws per row of the most repeated pool (a tier's, with tier weights)
    tier_rows: dict[int, int] = field(default_factory=dict)
    tier_draws: dict[int, int] = field(default_factory=dict)
    overlong: str = "skip"  # the source's policy for rows longer than max_seq_len
    skipped_rows: int = 0  # rows of the version never drawn: longer than max_seq_len under the policy
    cut_rows: int = 0  # drawable rows longer than max_seq_len (cut when drawn)
    cut_draws: int = 0  # positions whose row is cut to max_seq_len
    cut_tokens: int = 0  # tokens of those rows past max_seq_len (not delivered)
    target_tokens: int = 0  # target tokens of every row of the version's split
    skipped_target_tokens: int = 0  # of those, in rows the policy skips (never trained on)
    cut_target_tokens: int = 0  # of those, cut from rows still drawn (trained on without them)

    def as_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "draws": self.draws, "epochs": round(self.epochs, 6),
                "tier_rows": {str(k): v for k, v in sorted(self.tier_rows.items())},
                "tier_draws": {str(k): v for k, v in sorted(self.tier_draws.items())},
                "overlong": self.overlong, "skipped_rows": self.skipped_rows, "cut_rows": self.cut_rows,
                "cut_draws": self.cut_draws, "cut_tokens": self.cut_tokens, "target_tokens": self.target_tokens,
                "skipped_target_tokens": self.skipped_target_tokens, "cut_target_tokens": self.cut_target_tokens}


@dataclass
class SplitPlan:
    split: str
    component: np.ndarray  # int16 per position
    shard: np.ndarray
    row: np.ndarray
    tier: np.ndarray
    n_tokens: np.ndarray
    epoch: np.ndarray
    stats: list[SplitStats]
    tier_targets: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]]  # (component, window, tier, target)

    def __len__(self) -> int:
        return len(self.component)


@dataclass
class PlanResult:
    """A plan as built or found in the catalog."""

    id: str
    dir: Path
    resolved: ResolvedMix
    created: bool
    seconds: float
    stats: dict[str, list[SplitStats]]


# -- computing ---------------------------------------------------------------------------------

def compute_split(resolved: ResolvedMix, pools: list[RowPool], split: str, n: int) -> SplitPlan:
    """The plan of one split: ``n`` positions over the components' pools of that split, each pool
    first restricted to the rows its overlong policy draws at ``max_seq_len``."""
    d = resolved.manifest.data
    limit = d.max_seq_len
    comps = resolved.components
    stats, usable = [], []
    for c, pool in zip(comps, pools):
        keep = drawable(pool.n_tokens, pool.prompt_len, c.overlong, limit)
        skipped = len(pool) - int(keep.sum())
        target, skipped_target, cut_target = target_counts(pool.n_tokens, pool.prompt_len, keep, limit)
        usable.append(pool.subset(keep) if skipped else pool)
        stats.append(SplitStats(rows=len(usable[-1]), tier_rows=usable[-1].tier_rows(), overlong=c.overlong,
                                skipped_rows=skipped, cut_rows=int((usable[-1].n_tokens > limit).sum()),
                                target_tokens=target, skipped_target_tokens=skipped_target,
                                cut_target_tokens=cut_target))
        _check_target_loss(resolved, c, split, stats[-1])
    token_draws = _token_draws(resolved, usable, stats, split, n) if d.weight_by == "tokens" and n else None
    component = (token_draws[0] if token_draws is not None
                 else source_schedule([c.weight for c in comps], n, d.window))
    shard = np.zeros(n, dtype=np.int32)
    row = np.zeros(n, dtype=np.int32)
    tier = np.zeros(n, dtype=np.int8)
    n_tokens = np.zeros(n, dtype=np.int32)
    epoch = np.zeros(n, dtype=np.int32)
    targets = []
    order = np.argsort(component, kind="stable")
    bounds = np.searchsorted(component[order], np.arange(len(comps) + 1))
    for c, pool, st in zip(comps, usable, stats):
        positions = order[bounds[c.index]:bounds[c.index + 1]]  # ascending
        st.draws = len(positions)
        if len(positions) == 0:
            continue
        _check_pool(resolved, c, pool, split, st, len(positions))
        if token_draws is None:
            x = (positions + 0.5) / n
            picked, ep, draw_tiers = _draw(resolved, c, pool, split, x)
        else:
            x, picked, ep, draw_tiers = (a[:len(positions)] if a is not None else None
                                         for a in token_draws[1][c.index])
        _epochs(resolved, c, pool, split, st, picked, draw_tiers)
        if draw_tiers is not None:
            targets.append(_tier_targets(c, positions, x, d.window))
        epoch[positions] = ep
        shard[positions] = pool.shard[picked]
        row[positions] = pool.row[picked]
        tier[positions] = pool.tier[picked]
        lengths = pool.n_tokens[picked]
        n_tokens[positions] = np.minimum(lengths, limit)  # what the reader delivers
        st.cut_draws = int((lengths > limit).sum())
        st.cut_tokens = int(np.maximum(lengths - limit, 0).sum())
        got_tiers, got_counts = np.unique(tier[positions], return_counts=True)
        st.tier_draws = {int(t): int(k) for t, k in zip(got_tiers, got_counts)}
    return SplitPlan(split, component, shard, row, tier, n_tokens, epoch, stats, targets)


def _check_pool(resolved: ResolvedMix, c: Component, pool: RowPool, split: str, st: SplitStats, draws: int) -> None:
    """One line when a source that must be drawn has nothing to draw (or lacks a weighted tier)."""
    limit = resolved.manifest.data.max_seq_len
    if len(pool) == 0 and st.skipped_rows:
        raise UserError(f"{resolved.manifest.where(c.key('overlong'))}: no {split} row of {c.version_id} fits "
                        f"data.max_seq_len {limit} under overlong = \"{c.overlong}\" ({st.skipped_rows:,} skipped): "
                        f"raise max_seq_len or set overlong = \"truncate\"")
    if len(pool) == 0:
        raise UserError(f"{resolved.manifest.where(c.key())}: version {c.version_id} has no {split} rows "
                        f"but the plan needs {draws:,}" + (" (set data.val_samples = 0 or rebuild "
                                                          "with --val-ratio > 0)" if split == "val" else ""))
    if split == "train" and c.spec.tiers:
        _check_tiers_present(resolved, c, pool, st)


def _check_target_loss(resolved: ResolvedMix, c: Component, split: str, st: SplitStats) -> None:
    """Refuse a source whose drawn rows would lose more of its target tokens to the cut at
    max_seq_len than the manifest allows (skipped rows are never trained on: counted, not refused)."""
    d = resolved.manifest.data
    allowed = c.spec.max_target_loss if c.spec.max_target_loss is not None else d.max_target_loss
    if not st.target_tokens or st.cut_target_tokens <= allowed * st.target_tokens:
        return
    share = st.cut_target_tokens / st.target_tokens
    raise UserError(f"{resolved.manifest.where(c.key('max_target_loss'))}: {c.version_id} would lose {share:.1%} "
                    f"of its {split} target tokens ({st.cut_target_tokens:,} of {st.target_tokens:,}, from "
                    f"{st.cut_rows:,} rows cut) to overlong = \"{c.overlong}\" at max_seq_len {d.max_seq_len}, over "
                    f"max_target_loss {allowed:g}: use a version built for this length, or accept it with "
                    f"max_target_loss = {math.ceil(share * 100) / 100:g} on this source")


def _draw(resolved: ResolvedMix, c: Component, pool: RowPool, split: str, x: np.ndarray, check_epochs: bool = True):
    """Pool index, epoch and tier (None without tier weights) of the draws at plan fractions ``x``
    (token mode draws candidates unchecked: only the draws it takes count against max_epochs)."""
    d = resolved.manifest.data
    if not (split == "train" and c.spec.tiers):
        if check_epochs:
            _check_epochs(resolved, c, split, len(x), len(pool), None)
        idx, ep = epoch_draws(len(x), len(pool), seeded_rng(d.seed, c.name, c.version_id, split))
        return idx, ep, None
    draw_tiers = tier_sequence(c.spec.tiers, x)
    picked = np.empty(len(x), dtype=np.int64)
    epoch = np.empty(len(x), dtype=np.int32)
    for t in np.unique(draw_tiers):
        where = np.flatnonzero(draw_tiers == t)
        members = np.flatnonzero(pool.tier == t)
        if len(members) == 0:
            raise UserError(f"{resolved.manifest.where(c.key('tiers'))}: tier {int(t)} is drawn but version "
                            f"{c.version_id} has no {split} rows of it")
        if check_epochs:  # before drawing: a huge repeat count is refused before it is drawn
            _check_epochs(resolved, c, split, len(where), len(members), int(t))
        idx, ep = epoch_draws(len(where), len(members), seeded_rng(d.seed, c.name, c.version_id, split, int(t)))
        picked[where] = members[idx]
        epoch[where] = ep
    return picked, epoch, draw_tiers


def _epochs(resolved: ResolvedMix, c: Component, pool: RowPool, split: str, st: SplitStats,
            picked: np.ndarray, draw_tiers: np.ndarray | None) -> None:
    """Draws per row of the most repeated pool (a tier's, with tier weights), checked against max_epochs."""
    if draw_tiers is None:
        _check_epochs(resolved, c, split, len(picked), len(pool), None)
        st.epochs = len(picked) / len(pool)
        return
    st.epochs = 0.0
    for t, k in zip(*np.unique(draw_tiers, return_counts=True)):
        members = int((pool.tier == t).sum())
        _check_epochs(resolved, c, split, int(k), members, int(t))
        st.epochs = max(st.epochs, int(k) / members)


def _token_draws(resolved: ResolvedMix, pools: list[RowPool], stats: list[SplitStats], split: str, n: int):
    """``weight_by = "tokens"``: the position → source sequence (stratify.token_schedule) and, per
    source, its draws in order ``(x, pool index, epoch, tier)``. Each source first gets more
    candidate draws than it can take (its expected share of positions, from its mean delivered
    length, plus margin); a source that used them all gets twice as many and the merge is redone.
    A draw's plan fraction x is its index over the source's expected draws (tier schedules)."""
    d = resolved.manifest.data
    comps = resolved.components
    for c, pool, st in zip(comps, pools, stats):
        _check_pool(resolved, c, pool, split, st, n)
    mean = np.array([np.minimum(p.n_tokens, d.max_seq_len).mean() for p in pools])
    share = np.array([c.weight for c in comps]) / mean
    expected = n * share / share.sum()
    wanted = np.minimum(np.ceil(expected * 1.25 + d.window).astype(np.int64), n)
    while True:
        draws = []
        for c, pool, k, e in zip(comps, pools, wanted, expected):
            x = np.minimum((np.arange(k) + 0.5) / max(e, 1.0), 1.0)
            picked, ep, draw_tiers = _draw(resolved, c, pool, split, x, check_epochs=False)
            draws.append((x, picked, ep, draw_tiers))
        lengths = [np.minimum(pool.n_tokens[p], d.max_seq_len) for pool, (_, p, _, _) in zip(pools, draws)]
        component = token_schedule(lengths, [c.weight for c in comps], n)
        used = np.bincount(component, minlength=len(comps))
        short = (used >= wanted) & (wanted < n)
        if not short.any():
            return component, draws
        wanted = np.where(short, np.minimum(wanted * 2, n), wanted)


def _check_tiers_present(resolved: ResolvedMix, c: Component, pool: RowPool, st: SplitStats) -> None:
    have = pool.tier_rows()
    skipped = (f"; {st.skipped_rows:,} rows longer than data.max_seq_len {resolved.manifest.data.max_seq_len} "
               f"skipped (overlong = \"{st.overlong}\")") if st.skipped_rows else ""
    for knot in c.spec.tiers:
        for t, w in knot.weights.items():
            if w > 0 and not have.get(t):
                raise UserError(f"{resolved.manifest.where(c.key('tiers'))}: tier {t} has weight {w:g} but version "
                                f"{c.version_id} has no train rows of tier {t} (tiers present: "
                                f"{', '.join(f'{k}: {v:,}' for k, v in sorted(have.items()))}{skipped})")


def _check_epochs(resolved: ResolvedMix, c: Component, split: str, draws: int, rows: int, t: int | None) -> None:
    cap = c.spec.max_epochs
    if split != "train" or cap is None or draws <= cap * rows + 1e-9:
        return
    what = f"tier {t}: " if t is not None else ""
    raise UserError(f"{resolved.manifest.where(c.key('max_epochs'))}: {c.name} would be repeated "
                    f"{draws / rows:.2f} times ({what}{draws:,} draws of {rows:,} train rows of {c.version_id}) "
                    f"> max_epochs {cap:g}: lower its weight or data.train_samples, or build more rows")


def _tier_targets(c: Component, positions: np.ndarray, x: np.ndarray, window: int):
    """Expected draws per (window, tier): Σ over the source's draws in the window of p_t(x)."""
    tiers, p = tier_weight_matrix(c.spec.tiers, x)
    win = positions // window
    n_win = int(win.max()) + 1
    present = np.bincount(win, minlength=n_win) > 0
    windows, tier_col, target = [], [], []
    for col, t in enumerate(tiers):
        expected = np.bincount(win, weights=p[:, col], minlength=n_win)
        idx = np.flatnonzero(present)
        windows.append(idx)
        tier_col.append(np.full(len(idx), t))
        target.append(expected[idx])
    return c.index, np.concatenate(windows), np.concatenate(tier_col), np.concatenate(target)


# -- writing -----------------------------------------------------------------------------------

def plan_table(plan_id: str, sp: SplitPlan, resolved: ResolvedMix):
    import pyarrow as pa

    n = len(sp)
    names = [c.name for c in resolved.components]
    versions = [c.version_id for c in resolved.components]
    codes = pa.array(sp.component.astype(np.int16))

    def constant(value: str):
        return pa.DictionaryArray.from_arrays(pa.array(np.zeros(n, dtype=np.int8)), pa.array([value]))

    table = pa.table({
        "plan": constant(plan_id),
        "split": constant(sp.split),
        "position": pa.array(np.arange(n, dtype=np.int64)),
        "source": pa.DictionaryArray.from_arrays(codes, pa.array(names)),
        "version": pa.DictionaryArray.from_arrays(codes, pa.array(versions)),
        "shard": pa.array(sp.shard),
        "row": pa.array(sp.row),
        "tier": pa.array(sp.tier),
        "n_tokens": pa.array(sp.n_tokens),
        "epoch": pa.array(sp.epoch),
    })
    meta = {"hrm.plan": plan_id, "hrm.split": sp.split,
            "hrm.payload": json.dumps(resolved.payload(), sort_keys=True)}
    return table.replace_schema_metadata(meta)


def write_split(path: Path, table) -> None:
    import pyarrow.parquet as pq

    from corpus.atomic import atomic_path

    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=ROW_GROUP, compression="zstd", compression_level=3,
                       write_statistics=True)


def plan_json(resolved: ResolvedMix, plan_id: str, splits: dict[str, SplitPlan]) -> bytes:
    """A human-readable summary beside the Parquet files; deterministic like them."""
    doc = {
        "plan": plan_id,
        "payload": resolved.payload(),
        "components": [
            {"name": c.name, "version": c.version_id, "weight": c.weight, "max_epochs": c.spec.max_epochs,
             "chosen": c.chosen, "input_fingerprint": c.fingerprint,
             **{split: splits[split].stats[c.index].as_dict() for split in SPLITS}}
            for c in resolved.components
        ],
    }
    return (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode()


# -- the whole step ----------------------------------------------------------------------------

# Peak bytes per plan position while computing and writing a split: the SplitPlan's columns, the
# draw indices, and the Arrow table's copies (measured ~50; rounded up).
PLAN_BYTES_PER_POSITION = 64


def available_memory() -> int | None:
    """Bytes this machine can still give (MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def check_plan_fits(manifest: Manifest) -> None:
    """One line, before anything is allocated, when the plan cannot fit in this machine's memory."""
    d = manifest.data
    need = (d.train_samples + d.val_samples) * PLAN_BYTES_PER_POSITION
    have = available_memory()
    if have is not None and need > have:
        raise UserError(f"{manifest.path}: [data].train_samples = {d.train_samples} (+ val_samples = {d.val_samples}) "
                        f"needs about {need / 2**30:.1f} GiB to plan, this machine has {have / 2**30:.1f} GiB "
                        f"available: lower it (nothing was built or written)")


def mix_dir(root: Path, manifest: Manifest, plan_id: str) -> Path:
    from corpus.paths import mixes_dir, safe_name

    return mixes_dir(root) / safe_name(manifest.name) / plan_id


def make_plan(manifest: Manifest | str | Path, root: Path, force: bool = False, build_missing: bool = True,
              log: Callable[[str], None] = print) -> PlanResult:
    """Resolve ``manifest`` and return its plan, computing and registering it unless it exists."""
    from corpus.catalog import Catalog

    started = time.perf_counter()
    if not isinstance(manifest, Manifest):
        manifest = load_manifest(manifest)
    check_plan_fits(manifest)  # before anything is built, allocated or written
    root = Path(root)
    resolved = resolve(manifest, root, build_missing=build_missing, log=log)
    plan_id = resolved.plan_id
    catalog = Catalog(root)
    existing, shards = _registered_and_shards(catalog, root, plan_id, [c.version_id for c in resolved.components])
    if existing is not None and not force:
        refresh_views(root)  # cheap, and keeps the views right if the data root moved
        directory = root / existing["dir"]
        stats = _stats_from_json(directory)
        for split in SPLITS:  # max_target_loss is not in the plan id: a stricter manifest still refuses
            for c in resolved.components:
                _check_target_loss(resolved, c, split, stats[split][c.index])
        _publish_remote(root, catalog, plan_id, manifest)  # completes an upload an earlier run did not finish
        return PlanResult(plan_id, directory, resolved, False, time.perf_counter() - started, stats)
    directory = root / existing["dir"] if existing else mix_dir(root, manifest, plan_id)
    from corpus.dirlock import hold, reclaim_temp_files

    lock = hold(directory, "plan directory")  # one writer: a second corpus.mix is refused, naming the pid
    try:
        reclaim_temp_files(directory)  # ``.plan-train.parquet.tmp-PID`` of killed writers
        d = manifest.data
        pools = {split: [load_pool(root, c.version_id, split, shards.get((c.version_id, split), []), _rule(c))
                         for c in resolved.components] for split in SPLITS}
        splits = {"train": compute_split(resolved, pools["train"], "train", d.train_samples),
                  "val": compute_split(resolved, pools["val"], "val", d.val_samples)}
        files = {f"plan-{split}.parquet": splits[split] for split in SPLITS}
        for name, sp in files.items():
            write_split(directory / name, plan_table(plan_id, sp, resolved))
        from corpus.atomic import write_bytes_atomic

        write_bytes_atomic(directory / "plan.json", plan_json(resolved, plan_id, splits))
        seconds = time.perf_counter() - started
        register(catalog, root, resolved, directory, splits, seconds)
    finally:
        lock.release()
    _publish_remote(root, catalog, plan_id, manifest)
    return PlanResult(plan_id, directory, resolved, True, seconds, {s: splits[s].stats for s in SPLITS})


def _publish_remote(root: Path, catalog, plan_id: str, manifest: Manifest) -> None:
    """On an ``s3://`` root: the plan's files (and the manifest's tokenizer file, which a node
    resolving the same manifest looks for) uploaded, then registered (corpus.storage)."""
    from corpus.mixing.resolve import tokenizer_path
    from corpus.storage import publish_remote

    publish_remote(root, catalog, plan_id, extra=[tokenizer_path(manifest, root)], quiet=True)


def _rule(c: Component) -> str | None:
    """The tier rule to read for a component: None for its build rule (the shards' tier column)."""
    rule = c.spec.tier_rule
    return None if rule is None or rule == c.version["tier_rule"] else rule


def _registered_and_shards(catalog, root: Path, plan_id: str, versions: list[str]):
    """The plan's catalog row if all its files are still there (else None), and the versions'
    shard records by (version, split) - one connection."""
    import duckdb

    with catalog.connect(read_only=True) as con:
        def rows_of(sql: str, params: list) -> list[dict]:
            cur = con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

        marks = ", ".join("?" * len(versions))
        shards: dict[tuple[str, str], list[dict]] = {}
        for s in rows_of(f"SELECT * FROM shards WHERE version IN ({marks}) ORDER BY version, split, idx", versions):
            shards.setdefault((s["version"], s["split"]), []).append(s)
        try:
            rows = rows_of("SELECT * FROM mixes WHERE id = ?", [plan_id])
        except duckdb.CatalogException:  # a catalog not yet migrated for mixes (read-only connections do not migrate)
            rows = []
        paths = rows_of("SELECT * FROM files WHERE version = ? AND role = 'plan'", [plan_id]) if rows else []
    if not rows or not paths:
        return None, shards
    from corpus.verify import problem

    damaged = [why for p in paths if (why := problem(root, p, hash_it=True))]
    if damaged:  # a truncated plan-train.parquet or an edited plan.json: computed and written again
        import sys

        print(f"plan {plan_id}: {damaged[0]}; planning it again", file=sys.stderr)
        return None, shards
    return rows[0], shards


def _stats_from_json(directory: Path) -> dict[str, list[SplitStats]]:
    """The per-source statistics recorded in an existing plan's plan.json."""
    doc = json.loads((directory / "plan.json").read_text())
    out: dict[str, list[SplitStats]] = {split: [] for split in SPLITS}
    for comp in doc["components"]:
        for split in SPLITS:
            s = comp[split]
            out[split].append(SplitStats(s["rows"], s["draws"], s["epochs"],
                                         {int(k): v for k, v in s["tier_rows"].items()},
                                         {int(k): v for k, v in s["tier_draws"].items()},
                                         **{k: s[k] for k in LENGTH_FIELDS if k in s}))
    return out


def register(catalog, root: Path, resolved: ResolvedMix, directory: Path, splits: dict[str, SplitPlan],
             seconds: float) -> None:
    """One transaction: mixes, mix_components, mix_tier_targets, files; then the audit views."""
    import pyarrow as pa

    from corpus.atomic import sha256_file
    from corpus.mixing.views import count_windows, create_views

    plan_id = resolved.plan_id
    m = resolved.manifest
    d = m.data
    rel = lambda p: str(Path(p).relative_to(root))  # noqa: E731
    names = [c.name for c in resolved.components]
    target_parts: dict[str, list] = {"mix": [], "split": [], "window_idx": [], "source": [], "tier": [], "target": []}
    for split, sp in splits.items():
        for comp, win, tier, target in sp.tier_targets:
            target_parts["window_idx"].append(win.astype(np.int32))
            target_parts["tier"].append(tier.astype(np.int32))
            target_parts["target"].append(target.astype(np.float64))
            target_parts["source"].extend([names[comp]] * len(win))
            target_parts["split"].extend([split] * len(win))
    count = len(target_parts["source"])
    targets = pa.table({
        "mix": pa.array([plan_id] * count, pa.string()),
        "split": pa.array(target_parts["split"], pa.string()),
        "window_idx": pa.array(np.concatenate(target_parts["window_idx"]) if count else np.zeros(0, np.int32)),
        "source": pa.array(target_parts["source"], pa.string()),
        "tier": pa.array(np.concatenate(target_parts["tier"]) if count else np.zeros(0, np.int32)),
        "target": pa.array(np.concatenate(target_parts["target"]) if count else np.zeros(0)),
    })
    plan_files = [directory / f"plan-{s}.parquet" for s in SPLITS] + [directory / "plan.json"]
    with catalog.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            for table, column in PLAN_TABLES:
                con.execute(f"DELETE FROM {table} WHERE {column} = ?", [plan_id])
            con.execute("DELETE FROM files WHERE version = ? AND role = 'plan'", [plan_id])
            con.execute(
                "INSERT INTO mixes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [plan_id, m.name, str(m.path), m.sha256, d.seed, d.window, resolved.tokenizer.sha256, d.max_seq_len,
                 d.train_samples, d.val_samples, resolved.payload()["algorithm"],
                 json.dumps(resolved.payload(), sort_keys=True), rel(directory), datetime.now(timezone.utc), seconds,
                 d.weight_by])
            for c in resolved.components:
                tr, va = splits["train"].stats[c.index], splits["val"].stats[c.index]
                con.execute(
                    "INSERT INTO mix_components VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [plan_id, c.index, c.name, c.version_id, c.weight, json.dumps(tiers_json(c.spec)),
                     c.spec.max_epochs, tr.rows, va.rows, tr.draws, va.draws, tr.epochs, va.epochs, c.chosen,
                     c.fingerprint])
            for split, sp in splits.items():
                for c in resolved.components:
                    st = sp.stats[c.index]
                    con.execute("INSERT INTO mix_length_counts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [plan_id, split, c.name, st.overlong, d.max_seq_len, st.rows + st.skipped_rows,
                                 st.skipped_rows, st.cut_rows, st.draws, st.cut_draws, st.cut_tokens,
                                 st.target_tokens, st.skipped_target_tokens, st.cut_target_tokens])
            con.register("_hrm_tier_targets", targets)
            con.execute("INSERT INTO mix_tier_targets SELECT * FROM _hrm_tier_targets")
            con.unregister("_hrm_tier_targets")
            for split in SPLITS:
                count_windows(con, directory / f"plan-{split}.parquet", d.window)
            for path in plan_files:
                con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, 'plan', ?, ?)",
                            [rel(path), plan_id, sha256_file(path), path.stat().st_size])
            create_views(con, root)
            con.execute("COMMIT")
        except Exception:
            from corpus.catalog import rollback

            rollback(con)  # never masks the real error (DuckDB may have rolled back already)
            raise


def refresh_views(root: Path) -> None:
    """Recreate the audit views (e.g. after the data root moved)."""
    from corpus.catalog import Catalog
    from corpus.mixing.views import create_views

    with Catalog(root).connect() as con:
        create_views(con, root)


def remove_plan(root: Path, plan_id: str) -> None:
    """Forget a plan: its catalog rows and its directory (used by --force and tests)."""
    from corpus.catalog import Catalog

    catalog = Catalog(root)
    rows = catalog.query_dicts("SELECT dir FROM mixes WHERE id = ?", [plan_id])
    with catalog.connect() as con:
        for table, column in PLAN_TABLES:
            con.execute(f"DELETE FROM {table} WHERE {column} = ?", [plan_id])
        con.execute("DELETE FROM files WHERE version = ? AND role = 'plan'", [plan_id])
    for r in rows:
        shutil.rmtree(root / r["dir"], ignore_errors=True)
