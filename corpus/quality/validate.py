"""Validate one version: run its suites on every shard, record the results, decide pass/fail.

For each shard: ``shard.schema`` and ``<kind>.rows`` (facts frame); then ``version.rows`` over
all shards. Results go to the catalog ``validations`` table (one row per shard and suite, with
the failing expectations and the engine that decided) and, as GX-structured JSON, to
``<root>/reports/validations/<source>/<version>/`` for the Data Docs. Row hashes and duplicates
are recorded by :mod:`corpus.quality.dedup`.

Two engines run the same suites (:mod:`corpus.quality.suites`) to the same results:
``native`` (numpy, what a build uses; imports neither GX nor pandas) and ``gx`` (Great
Expectations, the reference: ``python -m corpus.quality check`` and CI).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from corpus.errors import UserError

ENGINES = ("native", "gx")
VERSION_COLUMNS = ["id", "split", "text_hash", "shard", "shard_split"]


@dataclass
class VersionOutcome:
    version: str
    source: str
    kind: str
    engine: str = "native"
    results: list = field(default_factory=list)    # (shard rel path, SuiteResult, report rel path)
    duplicates: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def success(self) -> bool:
        return bool(self.results) and all(r.success for _, r, _ in self.results)

    def failures(self, severity: str = "critical") -> list[str]:
        """One line per failed expectation of ``severity``: ``shard: suite: description (...): N rows, e.g. ...``."""
        from corpus.quality.results import describe

        return [f"{Path(shard).name}: {r.suite}: {describe(f)}" for shard, r, _ in self.results
                for f in r.failures if f.get("severity", "critical") == severity]


def runner(engine: str):
    """A fresh runner of ``engine`` (``native`` or ``gx``): ``run(suite, expectations, frame, asset)``."""
    if engine == "native":
        from corpus.quality.native import NativeRunner

        return NativeRunner()
    if engine == "gx":
        from corpus.quality.gx import Runner

        return Runner()
    raise UserError(f"unknown validation engine {engine!r}: use one of {', '.join(ENGINES)}")


def validate_version(catalog, root: Path, version_id: str, write: bool = True,
                     facts: dict | None = None, engine: str = "native") -> VersionOutcome:
    """Run every suite of ``version_id`` with ``engine``; with ``write`` record results, hashes and duplicates.

    ``facts`` maps shard paths to facts already taken (a build's, on the rows it wrote); every
    other shard's facts are computed from its files."""
    from corpus.paths import safe_name
    from corpus.quality.facts import FactsError, schema_frame, shard_facts
    from corpus.quality.frame import Frame
    from corpus.quality.results import error_result
    from corpus.quality.suites import (Limits, max_dup_rate, max_tier, rows_expectations, schema_expectations,
                                       suite_kind, version_expectations)

    started = time.perf_counter()
    with catalog.connect() as con:  # one connection for the reads (opening one costs ~25 ms)
        found = _dicts(con, "SELECT * FROM versions WHERE id = ?", [version_id])
        v = found[0] if found else None
        if v is None:
            raise UserError(f"unknown version {version_id}")
        shards = _dicts(con, "SELECT * FROM shards WHERE version = ? ORDER BY split, idx", [version_id])
        vocab = con.execute("SELECT vocab_size FROM tokenizers WHERE sha256 = ?", [v["tokenizer_sha"]]).fetchall()
    config = json.loads(v["config"]) if isinstance(v["config"], str) else (v["config"] or {})
    if not vocab:
        raise UserError(f"version {version_id}: tokenizer {v['tokenizer_sha']} is not in the catalog")
    with_image = False
    for shard in shards[:1]:
        try:
            with_image = "image" in set(schema_frame(root / shard["path"])["column"])
        except FactsError:
            pass
    kind = "image" if with_image else suite_kind(v["source"], config)
    dup_rate, dup_severity = max_dup_rate(kind, config)
    limits = Limits(source=v["source"], vocab_size=int(vocab[0][0]), max_seq_len=int(v["max_seq_len"]),
                    max_tier=max_tier(v["source"], v["tier_rule"]), rows=int(v["rows"] or 0),
                    max_dup_rate=dup_rate, dup_severity=dup_severity,
                    # an evaluation version is one split, the one it was built from (older ones: train/val)
                    splits=(config["split"],) if v["kind"] == "eval" and not config.get("val_ratio") else
                    ("train", "val"))
    known = facts or {}
    outcome = VersionOutcome(version_id, v["source"], v["kind"] or "train", engine)
    suites = runner(engine)
    rows_suite = f"{kind}.rows"
    parts = []
    for shard in shards:
        rel = shard["path"]
        asset = f"{v['source']}/{version_id}/{Path(rel).stem}"
        try:
            facts = known[rel] if rel in known else shard_facts(root / rel)
        except (FactsError, OSError) as exc:
            outcome.results.append((rel, error_result(rows_suite, f"{rel}: {exc}"), None))
            continue
        outcome.results.append((rel, suites.run("shard.schema", schema_expectations(kind == "image"), facts.schema,
                                                asset, index_column="column"), None))
        outcome.results.append((rel, suites.run(rows_suite, rows_expectations(kind, limits), facts.rows, asset), None))
        n = len(facts.rows)
        part = facts.rows.select(["id", "split", "text_hash"])
        part["shard"] = np.full(n, rel, dtype=object)
        part["shard_split"] = np.full(n, shard["split"], dtype=object)
        parts.append(part)
    version_dir = str(Path(shards[0]["path"]).parent) if shards else f"shards/{safe_name(v['source'])}/{version_id}"
    if not shards:
        outcome.results.append((version_dir, error_result("version.rows", "the version has no shards"), None))
    frame = Frame.concat(parts, VERSION_COLUMNS)
    frame["in_both_splits"] = in_both_splits(frame["id"], frame["split"])
    if shards:
        outcome.results.append((version_dir, suites.run("version.rows", version_expectations(limits), frame,
                                                        f"{v['source']}/{version_id}"), None))
    if write:
        outcome.results = _write_reports(root, v["source"], version_id, outcome.results)
        outcome.duplicates = _record(catalog, version_id, v["source"], outcome.kind, outcome.results, engine,
                                     frame if parts else None)
    outcome.seconds = time.perf_counter() - started
    return outcome


def in_both_splits(ids: np.ndarray, splits: np.ndarray) -> np.ndarray:
    """Per row: does its id occur under more than one split? (missing ids and splits do not count)."""
    from corpus.quality.frame import factorize

    id_codes, n_ids = factorize(ids)
    split_codes, n_splits = factorize(splits)
    valid = (id_codes >= 0) & (split_codes >= 0)
    if not valid.any():
        return np.zeros(len(ids), dtype=bool)
    keys = id_codes[valid] * n_splits + split_codes[valid]
    if n_ids * n_splits <= 4 * len(keys) + 1024:  # the usual few splits: one pass, no sort
        present = np.bincount(keys, minlength=n_ids * n_splits).reshape(n_ids, n_splits) > 0
        splits_per_id = present.sum(axis=1)
    else:
        pairs = np.unique(keys)
        splits_per_id = np.bincount(pairs // n_splits, minlength=n_ids)
    return (id_codes >= 0) & (splits_per_id[np.maximum(id_codes, 0)] > 1)


def _write_reports(root: Path, source: str, version_id: str, results: list) -> list:
    from corpus.atomic import write_bytes_atomic
    from corpus.paths import reports_dir, safe_name

    base = reports_dir(root) / "validations" / safe_name(source) / version_id
    out = []
    for shard, result, _ in results:
        if result.result is None:
            out.append((shard, result, None))
            continue
        stem = Path(shard).stem if shard.endswith(".parquet") else "version"
        path = base / f"{stem}.{result.suite}.json"
        write_bytes_atomic(path, json.dumps(result.result, default=str).encode())
        out.append((shard, result, str(path.relative_to(root))))
    return out


def _record(catalog, version_id: str, source: str, kind: str, results: list, engine: str, frame) -> dict:
    """Validations, then (given the version frame) row hashes and duplicates, in one transaction."""
    from corpus.quality.dedup import record_in

    now = datetime.now(timezone.utc)
    with catalog.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM validations WHERE version = ?", [version_id])
            con.executemany(
                "INSERT INTO validations (version, shard, suite, success, evaluated, failed, failed_expectations, "
                "report_path, validated_at, engine) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [[version_id, shard, r.suite, r.success, r.evaluated, r.failed, json.dumps(r.failures, default=str),
                  report, now, engine] for shard, r, report in results])
            duplicates = record_in(con, version_id, source, kind, frame) if frame is not None else {}
            con.execute("COMMIT")
        except Exception:
            from corpus.catalog import rollback

            rollback(con)  # never masks the real error (DuckDB may have rolled back already)
            raise
    return duplicates


def _dicts(con, sql: str, params: list) -> list[dict]:
    cur = con.execute(sql, params)
    columns = [d[0] for d in cur.description]
    return [dict(zip(columns, row)) for row in cur.fetchall()]
