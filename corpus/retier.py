"""``python -m corpus.retier VERSION --rule NAME@vN``: tiers under a new rule, from stored features.

    shards' features column ──rule──► data/tiers/<source>/<version>/<rule>/<split>-NNNNN.parquet
                                            │  (row, tier), row-aligned with the shard
                                            ▼
                          catalog: tier_files + files (role tiers) + tiers rows under the rule

Reads only the version's Parquet shards (never the raw source) and never rewrites them: the
shards stay immutable, the new tiers live beside them. Re-running with the same rule prints the
registered histogram and writes nothing. ``VERSION`` may be a source name (its latest published
version). ``--list`` prints every known rule.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from corpus.errors import UserError


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m corpus.retier",
                                description="Tiers under a new rule, computed from a version's stored features "
                                            "(never the raw source); docs/tiers.md.")
    p.add_argument("version", nargs="?", help="a version id, or a source name for its latest published version")
    p.add_argument("--rule", help="tier rule id NAME@vN (or NAME for its newest version)")
    p.add_argument("--list", action="store_true", help="list the known tier rules and exit")
    p.add_argument("--data-dir", default=None, help="data root (default: $HRM_DATA_DIR or ./data)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if not args.list and not (args.version and args.rule):
        p.error("VERSION and --rule are required (or --list)")
    return args


def retier(args: argparse.Namespace) -> int:
    from corpus.catalog import Catalog
    from corpus.paths import data_root
    from corpus.tiers import get_rule

    if args.list:
        _print_rules()
        return 0
    root = data_root(args.data_dir)
    catalog = Catalog(root)
    version = _resolve_version(catalog, args.version)
    rule = get_rule(args.rule)
    if rule.id == version["tier_rule"]:
        print(f"{version['id']} was built under {rule.id}: its tiers are the shards' tier column")
        _print_histogram(catalog, version, rule.id)
        return 0
    if catalog.query("SELECT count(*) FROM tier_files WHERE version = ? AND rule = ?", [version["id"], rule.id])[0][0]:
        print(f"already tiered: {version['id']} under {rule.id}")
        _print_histogram(catalog, version, rule.id)
        return 0
    written = _write_side_files(catalog, root, version, rule, args.quiet)
    _register(catalog, root, version, rule, written)
    print(f"{version['id']} ({version['source']}) re-tiered under {rule.id}: {len(written)} side files")
    _print_histogram(catalog, version, rule.id)
    return 0


def _resolve_version(catalog, name: str) -> dict:
    row = catalog.version(name)
    if row is None:
        row = catalog.latest_version(name)
        if row is None:
            raise UserError(f"no version {name!r} and no published version of a source {name!r}")
    if row["status"] not in ("published", "failed"):
        raise UserError(f"version {row['id']} is {row['status']}: wait for its build to finish")
    return row


def _write_side_files(catalog, root: Path, version: dict, rule, quiet: bool) -> list[dict]:
    """Compute and write one (row, tier) Parquet file per shard; returns what to register."""
    import numpy as np
    import orjson
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpus.atomic import atomic_path, sha256_file
    from corpus.tiers import side_file

    shards = catalog.shards(version["id"])
    if not shards:
        raise UserError(f"version {version['id']} has no shards")
    written = []
    for shard in _progress(shards, f"re-tiering {version['id']} under {rule.id}", quiet):
        path = root / shard["path"]
        if not path.is_file():
            raise UserError(f"{path}: shard file missing (python -m corpus.verify)")
        # ParquetFile, not read_table: that one imports pyarrow.dataset (~1 s) for nothing here
        table = pq.ParquetFile(path).read(columns=["features", "n_tokens"])
        if table.num_rows != shard["rows"]:
            raise UserError(f"{path}: {table.num_rows} rows, catalog says {shard['rows']} (python -m corpus.verify)")
        tiers = np.empty(table.num_rows, dtype=np.int8)
        for i, text in enumerate(table.column("features").to_pylist()):
            features = orjson.loads(text)
            missing = [f for f in rule.features if f not in features]
            if missing:
                raise UserError(f"{path.name} row {i}: rule {rule.id} reads feature {missing[0]!r}, which "
                                f"{version['source']} rows lack (they have: {', '.join(sorted(features))})")
            try:
                tiers[i] = rule(features)
            except (KeyError, TypeError, ValueError) as exc:
                raise UserError(f"{path.name} row {i}: rule {rule.id} cannot tier features {features}: "
                                f"{type(exc).__name__}: {exc}") from None
        out = side_file(root, version["source"], version["id"], rule.id, shard["split"], shard["idx"])
        side = pa.table({"row": pa.array(np.arange(len(tiers), dtype=np.int32)), "tier": pa.array(tiers)})
        side = side.replace_schema_metadata({"hrm.tier_rule": rule.id, "hrm.shard": shard["path"]})
        with atomic_path(out) as tmp:
            pq.write_table(side, tmp, compression="zstd")
        n_tokens = table.column("n_tokens").to_numpy()
        written.append({
            "split": shard["split"], "idx": shard["idx"], "path": out, "rows": len(tiers),
            "sha256": sha256_file(out), "bytes": out.stat().st_size,
            "hist": {int(t): (int((tiers == t).sum()), int(n_tokens[tiers == t].sum())) for t in np.unique(tiers)},
        })
    return written


def _register(catalog, root: Path, version: dict, rule, written: list[dict]) -> None:
    """One transaction: tier_files, files (role tiers) and the tiers histogram under the rule."""
    now = datetime.now(timezone.utc)
    hist: Counter = Counter()
    tokens: Counter = Counter()
    for w in written:
        for tier, (rows, toks) in w["hist"].items():
            hist[(w["split"], tier)] += rows
            tokens[(w["split"], tier)] += toks
    with catalog.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            if con.execute("SELECT count(*) FROM tier_files WHERE version = ? AND rule = ?",
                           [version["id"], rule.id]).fetchone()[0]:
                con.execute("ROLLBACK")  # another process registered the same (identical) files first
                return
            for w in written:
                rel = str(w["path"].relative_to(root))
                con.execute("INSERT INTO tier_files VALUES (?, ?, ?, ?, ?, ?, ?)",
                            [version["id"], rule.id, w["split"], w["idx"], rel, w["rows"], now])
                con.execute("INSERT OR REPLACE INTO files VALUES (?, ?, 'tiers', ?, ?)",
                            [rel, version["id"], w["sha256"], w["bytes"]])
            for (split, tier), rows in sorted(hist.items()):
                con.execute("INSERT INTO tiers (version, split, tier, rows, tokens, rule) VALUES (?, ?, ?, ?, ?, ?)",
                            [version["id"], split, tier, rows, tokens[(split, tier)], rule.id])
            con.execute("COMMIT")
        except Exception:
            from corpus.catalog import rollback

            rollback(con)  # never masks the real error (DuckDB may have rolled back already)
            raise


def _progress(items, description: str, quiet: bool):
    from rich.progress import track

    return track(items, description=description, disable=quiet or not sys.stderr.isatty(), transient=True)


def _print_histogram(catalog, version: dict, rule_id: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from corpus.tiers import tier_histogram

    rows = tier_histogram(catalog, version["id"], rule_id)
    table = Table(title=f"{version['id']} under {rule_id}", show_edge=False)
    for col in ("split", "tier", "rows", "tokens"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for r in rows:
        table.add_row(r["split"], str(r["tier"]), f"{r['rows']:,}", f"{r['tokens']:,}")
    Console(highlight=False).print(table)


def _print_rules() -> None:
    from rich.console import Console
    from rich.table import Table

    from corpus.tiers import all_rules

    table = Table(title="tier rules", show_edge=False)
    for col in ("rule", "reads", "tiers", "definition"):
        table.add_column(col)
    for rid, rules in sorted(all_rules().items()):
        for r in rules:
            table.add_row(rid, ", ".join(r.features) or "-", f"0-{r.max_tier}", r.doc)
    Console(highlight=False).print(table)


def main(argv: list[str] | None = None) -> int:
    from corpus.cli import run_cli

    argv = sys.argv[1:] if argv is None else argv
    return run_cli(lambda: retier(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
