"""Tier rules by id, and the tier of every shard row under any rule (measure once, select many times).

A build stores each row's raw difficulty ``features`` and its tier under the source's build
rule (the shard's ``tier`` column; ``versions.tier_rule``). ``python -m corpus.retier`` computes
tiers under another rule from those stored features alone and writes one side file per shard:

    data/tiers/<source>/<version>/<rule id>/<split>-NNNNN.parquet     columns: row int32, tier int8
                                                                       (row i = row i of the shard)

registered in ``tier_files`` and ``files`` (role ``tiers``), with its histogram in ``tiers``
under ``rule``. Readers (the mixer) call :func:`shard_tiers`, which answers for the build rule
and for re-tiered rules alike. The contract is written down in docs/tiers.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus.errors import UserError
from corpus.paths import safe_name
from corpus.sources.base import TierRule, threshold_rule

# Rules that no source builds with but that may be applied afterwards with corpus.retier.
# Append a new version instead of editing a published rule: tiers registered under an id
# must keep meaning what they meant.
EXTRA_RULES: tuple[TierRule, ...] = (
    threshold_rule("gsm8k-calc", 1, "calc_calls", [3, 4, 6],
                   "tier = 0 for ≤2 calculator calls, 1 for 3, 2 for 4-5, 3 for ≥6"),
    threshold_rule("scienceqa-rationale", 1, "solution_words", [25, 50, 100],
                   "tier by words in the solution: <25, <50, <100, ≥100"),
)


def all_rules() -> dict[str, list[TierRule]]:
    """Every known rule by id: each source's build rule, its ``extra_tier_rules``, EXTRA_RULES.

    A list per id, so two different definitions under one id are reported when that id is used
    rather than one silently winning.
    """
    from corpus.sources import get_source, source_names

    found: dict[str, list[TierRule]] = {}

    def add(rule: TierRule) -> None:
        same = found.setdefault(rule.id, [])
        if not any(_same_rule(rule, r) for r in same):
            same.append(rule)

    for name in source_names():
        try:
            cls = get_source(name)
        except UserError:
            continue
        if getattr(cls, "tier_rule", None) is not None:
            add(cls.tier_rule)
        for rule in getattr(cls, "extra_tier_rules", ()):
            add(rule)
    for rule in EXTRA_RULES:
        add(rule)
    return found


def _same_rule(a: TierRule, b: TierRule) -> bool:
    return a is b or (a.fn is b.fn) or (a.max_tier, a.doc, a.features) == (b.max_tier, b.doc, b.features)


def get_rule(spec: str) -> TierRule:
    """``name@vN``, or ``name`` for its highest version; an unknown id is a one-line error."""
    rules = all_rules()
    if "@" not in spec:
        versions = [r for rid, rs in rules.items() for r in rs if r.name == spec]
        if not versions:
            raise UserError(f"unknown tier rule {spec!r}; known: {', '.join(sorted(rules))}")
        spec = max(versions, key=lambda r: r.version).id
    if spec not in rules:
        raise UserError(f"unknown tier rule {spec!r}; known: {', '.join(sorted(rules))}")
    if len(rules[spec]) > 1:
        raise UserError(f"tier rule {spec} is defined {len(rules[spec])} times with different definitions")
    return rules[spec][0]


def side_file(root: Path, source: str, version: str, rule_id: str, split: str, idx: int) -> Path:
    return Path(root) / "tiers" / safe_name(source) / version / rule_id / f"{split}-{idx:05d}.parquet"


def version_rules(catalog, version: str) -> list[str]:
    """Rule ids a version has tiers under: its build rule first, then re-tiered ones."""
    row = catalog.version(version)
    if row is None:
        raise UserError(f"unknown version {version}")
    more = catalog.query("SELECT DISTINCT rule FROM tier_files WHERE version = ? ORDER BY rule", [version])
    return [row["tier_rule"]] + [r for (r,) in more if r != row["tier_rule"]]


def tier_histogram(catalog, version: str, rule: str | None = None) -> list[dict]:
    """``tiers`` rows (split, tier, rows, tokens) of ``version`` under ``rule`` (default: build rule)."""
    row = catalog.version(version)
    if row is None:
        raise UserError(f"unknown version {version}")
    return catalog.query_dicts(
        "SELECT split, tier, rows, tokens FROM tiers WHERE version = ? AND rule = ? ORDER BY split, tier",
        [version, rule or row["tier_rule"]],
    )


def shard_tiers(catalog, version: str, split: str, idx: int, rule: str | None = None) -> np.ndarray:
    """int8 tier of every row of shard ``(version, split, idx)`` under ``rule`` (default: build rule)."""
    import pyarrow.parquet as pq

    row = catalog.version(version)
    if row is None:
        raise UserError(f"unknown version {version}")
    rule = rule or row["tier_rule"]
    if rule == row["tier_rule"]:
        shards = [s for s in catalog.shards(version, split) if s["idx"] == idx]
        if not shards:
            raise UserError(f"version {version} has no shard {split}-{idx:05d}")
        path = catalog.root / shards[0]["path"]
        return pq.ParquetFile(path).read(columns=["tier"]).column("tier").to_numpy().astype(np.int8)
    found = catalog.query("SELECT path FROM tier_files WHERE version = ? AND rule = ? AND split = ? AND idx = ?",
                          [version, rule, split, idx])
    if not found:
        raise UserError(f"version {version} has no tiers under {rule} for shard {split}-{idx:05d}: "
                        f"run python -m corpus.retier {version} --rule {rule}")
    side = pq.ParquetFile(catalog.root / found[0][0]).read(columns=["tier"])
    return side.column("tier").to_numpy().astype(np.int8)
