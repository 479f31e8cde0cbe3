"""What the evaluation reads from the catalog: a plan's sources, eval versions, and their rows.

Every query is one short read-only connection (the trainer or a build may hold the write lock;
``Catalog.connect`` retries). Nothing here writes. Functions return ``None`` / empty lists when
the catalog or the table is absent, so callers can fall back to raw files and say why.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

__all__ = ["catalog_exists", "plan_row", "plan_components", "eval_version", "latest_version", "version", "published_versions",
           "version_config", "version_rows", "version_prompts", "tokenizer_path"]


def catalog_exists(root: Path | None) -> bool:
    from corpus.paths import catalog_path

    return root is not None and catalog_path(Path(root)).exists()


def _query(root: Path, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    import duckdb

    from corpus.catalog import Catalog

    if not catalog_exists(root):
        return []
    with Catalog(Path(root)).connect(read_only=True) as con:
        try:
            cur = con.execute(sql, params)
        except duckdb.CatalogException:  # a catalog from before the table's migration
            return []
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row)) for row in cur.fetchall()]


def plan_row(root: Path, plan_id: str) -> dict[str, Any] | None:
    rows = _query(root, "SELECT * FROM mixes WHERE id = ?", [plan_id])
    return rows[0] if rows else None


def plan_components(root: Path, plan_id: str) -> list[dict[str, Any]]:
    """``[{source, version, ...}]`` of a plan, in component order."""
    return _query(root, "SELECT * FROM mix_components WHERE mix = ? ORDER BY idx", [plan_id])


def eval_version(root: Path, source: str) -> dict[str, Any] | None:
    """The newest published version of ``source`` registered as evaluation data (kind 'eval')."""
    rows = _query(root, "SELECT * FROM versions WHERE source = ? AND status = 'published' AND kind = 'eval' "
                        "ORDER BY created_at DESC LIMIT 1", [source])
    return rows[0] if rows else None


def latest_version(root: Path, source: str) -> dict[str, Any] | None:
    rows = _query(root, "SELECT * FROM versions WHERE source = ? AND status = 'published' "
                        "ORDER BY created_at DESC LIMIT 1", [source])
    return rows[0] if rows else None


def published_versions(root: Path, source: str) -> list[str]:
    rows = _query(root, "SELECT id FROM versions WHERE source = ? AND status = 'published' ORDER BY created_at",
                  [source])
    return [r["id"] for r in rows]


def quarantine_count(root: Path, version_id: str) -> int:
    """Records of a version's build that were quarantined (bad input), 0 when none."""
    rows = _query(root, "SELECT count(*) AS n FROM quarantine WHERE version = ?", [version_id])
    return int(rows[0]["n"]) if rows else 0


def version(root: Path, version_id: str) -> dict[str, Any] | None:
    rows = _query(root, "SELECT * FROM versions WHERE id = ?", [version_id])
    return rows[0] if rows else None


def version_config(root: Path, version_id: str) -> dict[str, Any]:
    rows = _query(root, "SELECT config FROM versions WHERE id = ?", [version_id])
    if not rows or rows[0]["config"] is None:
        return {}
    config = rows[0]["config"]
    return json.loads(config) if isinstance(config, str) else dict(config)


def _shard_paths(root: Path, version_id: str, split: str | None) -> list[Path]:
    sql = "SELECT path FROM shards WHERE version = ?"
    params: list[Any] = [version_id]
    if split:
        sql += " AND split = ?"
        params.append(split)
    return [Path(root) / r["path"] for r in _query(root, sql + " ORDER BY split, idx", params)]


def version_rows(root: Path, version_id: str, split: str | None = None,
                 columns: tuple[str, ...] = ("id", "tier", "prompt", "target", "meta")) -> Iterator[dict[str, Any]]:
    """The rows of a version's shards (one split or all), as dicts of ``columns``."""
    import pyarrow.parquet as pq

    from corpus.mixing.readcheck import check_registered

    for path in _shard_paths(root, version_id, split):
        check_registered(root, path)  # once per process and file: a damaged shard is one line
        table = pq.read_table(path, columns=list(columns))
        yield from table.to_pylist()


def version_prompts(root: Path, version_id: str, split: str = "train") -> set[str]:
    """Every prompt text of a version's split (for dropping holdout items seen in training)."""
    import pyarrow.parquet as pq

    from corpus.mixing.readcheck import check_registered

    out: set[str] = set()
    for path in _shard_paths(root, version_id, split):
        check_registered(root, path)
        out.update(pq.read_table(path, columns=["prompt"]).column("prompt").to_pylist())
    return out


def tokenizer_path(root: Path, sha: str) -> Path | None:
    from corpus.paths import tokenizer_dir

    path = tokenizer_dir(Path(root)) / f"{sha}.json"
    return path if path.is_file() else None
