"""Helpers for source tests: in-process builds into a tmp data root, and reading what they wrote."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from corpus.build import main as build_main
from corpus.catalog import Catalog


def build(root: Path, tokenizer: Path, source: str, *args: str) -> int:
    """``python -m corpus.build`` in-process; counts are of problems, so no hash val split."""
    return build_main([source, "--tokenizer", str(tokenizer), "--data-dir", str(root), "--quiet",
                       "--val-ratio", "0", "--max-seq-len", "4096", *args])


def latest(root: Path) -> dict:
    """The most recently registered version of the data root."""
    rows = Catalog(root).query_dicts("SELECT * FROM versions ORDER BY created_at DESC LIMIT 1")
    assert rows, "no version registered"
    return rows[0]


def rows_of(root: Path, version: str) -> list[dict]:
    """Every shard row of ``version``, features and meta decoded."""
    out = []
    for shard in Catalog(root).shards(version):
        for row in pq.read_table(root / shard["path"]).to_pylist():
            row["features"] = json.loads(row["features"])
            row["meta"] = json.loads(row["meta"])
            out.append(row)
    return out


def quarantine(root: Path, version: str) -> list[dict]:
    return Catalog(root).query_dicts("SELECT ref, field, reason FROM quarantine WHERE version = ? ORDER BY ref",
                                     [version])


def counters(root: Path, version: str) -> dict[str, int]:
    return dict(Catalog(root).query("SELECT name, value FROM version_counters WHERE version = ?", [version]))


def write_jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path
