"""The DuckDB catalog: what was built, from what, and whether it may be used.

DuckDB allows one writing process per file, so every access here is a short-lived connection.
When another process holds the lock we retry with exponential backoff (jittered) for up to
``HRM_CATALOG_TIMEOUT`` seconds, then fail with one line (:class:`CatalogBusy`): a second build
running at the same time waits its turn instead of losing its registration.

Tables are created and migrated here; ``schema_version`` records the migrations applied, so an
old catalog is upgraded in place on first use.
"""

from __future__ import annotations

import contextlib
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import duckdb

from corpus.errors import CatalogBusy, UserError
from corpus.paths import catalog_path

TIMEOUT_ENV = "HRM_CATALOG_TIMEOUT"
ANNOUNCE_AFTER_S = 1.0  # a wait longer than this is said, with who holds the lock

# Each migration is applied once, in order; append, never edit a published one.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE tokenizers (
            sha256 VARCHAR PRIMARY KEY, path VARCHAR, vocab_size INTEGER,
            pad_id INTEGER, bos_id INTEGER, eos_id INTEGER, created_at TIMESTAMP);
        CREATE TABLE versions (
            id VARCHAR PRIMARY KEY, source VARCHAR NOT NULL, kind VARCHAR, created_at TIMESTAMP,
            config JSON, input_fingerprint VARCHAR, tokenizer_sha VARCHAR, code_version VARCHAR,
            tier_rule VARCHAR, max_seq_len INTEGER, status VARCHAR, rows BIGINT, tokens BIGINT,
            quarantined BIGINT, build_seconds DOUBLE);
        CREATE TABLE shards (
            version VARCHAR, split VARCHAR, idx INTEGER, path VARCHAR, sha256 VARCHAR,
            bytes BIGINT, rows BIGINT, tokens BIGINT, min_len INTEGER, max_len INTEGER);
        CREATE TABLE files (
            path VARCHAR PRIMARY KEY, version VARCHAR, role VARCHAR, sha256 VARCHAR, bytes BIGINT);
        CREATE TABLE tiers (
            version VARCHAR, split VARCHAR, tier INTEGER, rows BIGINT, tokens BIGINT);
        CREATE TABLE quarantine (
            version VARCHAR, source VARCHAR, ref VARCHAR, field VARCHAR, reason VARCHAR);
        CREATE TABLE validations (
            version VARCHAR, shard VARCHAR, suite VARCHAR, success BOOLEAN, evaluated INTEGER,
            failed INTEGER, failed_expectations JSON, report_path VARCHAR, validated_at TIMESTAMP);
        """,
    ),
    (
        2,
        # tiers per rule (re-tiering adds rows under a new rule; old rows get the build rule),
        # the per-shard tier side files a re-tiering writes (docs/tiers.md), and counts a build
        # reports that are not rejections (e.g. ScienceQA images missing)
        """
        ALTER TABLE tiers ADD COLUMN rule VARCHAR;
        UPDATE tiers SET rule = versions.tier_rule FROM versions WHERE versions.id = tiers.version;
        CREATE TABLE tier_files (
            version VARCHAR, rule VARCHAR, split VARCHAR, idx INTEGER, path VARCHAR, rows BIGINT,
            created_at TIMESTAMP);
        CREATE TABLE version_counters (version VARCHAR, name VARCHAR, value BIGINT);
        """,
    ),
    (
        3,
        # data quality (docs/quality.md): eval-set n-gram hits per training row (dropped or
        # flagged), a normalized-text hash per row, and the exact duplicates found from them
        """
        CREATE TABLE decontamination (
            version VARCHAR, split VARCHAR, shard VARCHAR, row_id VARCHAR, benchmark VARCHAR,
            eval_version VARCHAR, item VARCHAR, ngram VARCHAR, action VARCHAR);
        CREATE TABLE row_hashes (
            version VARCHAR, split VARCHAR, shard VARCHAR, row_id VARCHAR, text_hash BIGINT);
        CREATE TABLE duplicates (
            version VARCHAR, split VARCHAR, row_id VARCHAR, text_hash BIGINT, scope VARCHAR,
            first_version VARCHAR, first_row_id VARCHAR);
        """,
    ),
    (
        4,
        # mix plans (docs/mixing.md): one row per plan id, its sources with the versions they
        # resolved to and their realized draws/epochs, and the expected tier draws per window
        # (the target side of the mix_tier_* audit views, which corpus.mixing creates)
        """
        CREATE TABLE mixes (
            id VARCHAR PRIMARY KEY, name VARCHAR, manifest_path VARCHAR, manifest_sha256 VARCHAR,
            seed BIGINT, window_size INTEGER, tokenizer_sha VARCHAR, max_seq_len INTEGER,
            train_samples BIGINT, val_samples BIGINT, algorithm VARCHAR, payload JSON, dir VARCHAR,
            created_at TIMESTAMP, build_seconds DOUBLE);
        CREATE TABLE mix_components (
            mix VARCHAR, idx INTEGER, source VARCHAR, version VARCHAR, weight DOUBLE, tier_weights JSON,
            max_epochs DOUBLE, train_rows BIGINT, val_rows BIGINT, train_draws BIGINT, val_draws BIGINT,
            epochs DOUBLE, val_epochs DOUBLE);
        CREATE TABLE mix_tier_targets (
            mix VARCHAR, split VARCHAR, window_idx INTEGER, source VARCHAR, tier INTEGER, target DOUBLE);
        """,
    ),
    (
        5,
        # realized positions and tokens per (plan, split, window, source, tier), aggregated by
        # DuckDB from the plan Parquet when the plan is registered: the audit views read this
        # instead of re-scanning millions of plan rows (plans are immutable)
        """
        CREATE TABLE mix_window_counts (
            mix VARCHAR, split VARCHAR, window_idx INTEGER, source VARCHAR, tier INTEGER,
            positions BIGINT, tokens BIGINT);
        """,
    ),
    (
        6,
        # rows longer than the plan's max_seq_len per (plan, split, source): the policy, the rows
        # it skipped (never drawn) and the positions it cut (docs/mixing.md; view mix_overlong)
        """
        CREATE TABLE mix_length_counts (
            mix VARCHAR, split VARCHAR, source VARCHAR, policy VARCHAR, max_seq_len INTEGER, rows BIGINT,
            skipped_rows BIGINT, cut_rows BIGINT, positions BIGINT, cut_positions BIGINT, cut_tokens BIGINT);
        """,
    ),
    (
        7,
        # a fast digest (xxh3-64) of each shard file, checked by readers on their first open of
        # it in a process (corpus.mixing.readcheck); sha256 in files stays what verify checks
        """
        CREATE TABLE file_checksums (path VARCHAR PRIMARY KEY, xxh3 VARCHAR);
        """,
    ),
    (
        8,
        # which engine decided each validation: "native" (numpy; what a build runs) or "gx" (Great
        # Expectations; corpus.quality check and CI). Rows validated before this have none.
        """
        ALTER TABLE validations ADD COLUMN engine VARCHAR;
        """,
    ),
    (
        9,
        # what a plan used and what it lost (docs/mixing.md): how each source's version was chosen
        # (pinned | declared | latest) with its inputs' fingerprint; whether weights are shares of
        # samples or of tokens; the target tokens of each source's rows, those of the rows its
        # overlong policy skips, and those cut from rows it still draws
        """
        ALTER TABLE mix_components ADD COLUMN chosen VARCHAR;
        ALTER TABLE mix_components ADD COLUMN input_fingerprint VARCHAR;
        ALTER TABLE mixes ADD COLUMN weight_by VARCHAR;
        ALTER TABLE mix_length_counts ADD COLUMN target_tokens BIGINT;
        ALTER TABLE mix_length_counts ADD COLUMN skipped_target_tokens BIGINT;
        ALTER TABLE mix_length_counts ADD COLUMN cut_target_tokens BIGINT;
        """,
    ),
    (
        10,
        # near-duplicates (corpus/quality/near_dedup.py, docs/quality.md): every row a MinHash-LSH
        # run found within Jaccard of an earlier row, the row it matched, its cluster (the kept
        # row), the estimated and verified Jaccard, what was done and the first 400 characters of
        # both texts (a dropped row is in no shard); one run record per version
        # (its settings, even when nothing was found), and the views the report reads
        """
        CREATE TABLE near_duplicates (
            version VARCHAR, split VARCHAR, shard INTEGER, row_id VARCHAR, duplicate_of_version VARCHAR,
            duplicate_of VARCHAR, duplicate_of_split VARCHAR, cluster VARCHAR, estimated_jaccard DOUBLE,
            jaccard DOUBLE, scope VARCHAR, action VARCHAR, text VARCHAR, duplicate_of_text VARCHAR);
        CREATE TABLE near_dedup_runs (
            version VARCHAR PRIMARY KEY, policy VARCHAR, threshold DOUBLE, permutations INTEGER,
            bands INTEGER, shingle VARCHAR, ngram INTEGER, library VARCHAR, rows BIGINT,
            near_duplicates BIGINT, clusters BIGINT, across BIGINT, seconds DOUBLE);
        CREATE VIEW near_duplicate_rates AS
            SELECT r.version, v.source, v.kind, r.policy, r.threshold, r.rows, r.near_duplicates, r.clusters,
                   r.near_duplicates / greatest(r.rows, 1) AS rate, r.across
            FROM near_dedup_runs r JOIN versions v ON v.id = r.version;
        CREATE VIEW near_duplicate_clusters AS
            SELECT version, cluster, count(*) + 1 AS rows, min(jaccard) AS min_jaccard, avg(jaccard) AS mean_jaccard,
                   any_value(action) AS action
            FROM near_duplicates WHERE scope = 'within' GROUP BY version, cluster;
        """,
    ),
    (
        12,
        # object storage (corpus/storage, docs/storage.md): a version (or plan) of this data root
        # counts as on its remote root only once its manifest was uploaded, after every object it
        # lists; the manifest's text is kept so a node can fetch its small files without listing
        """
        CREATE TABLE remote_versions (
            remote VARCHAR, version VARCHAR, manifest_key VARCHAR, manifest VARCHAR, files INTEGER,
            bytes BIGINT, uploaded_at TIMESTAMP, PRIMARY KEY (remote, version));
        """,
    ),
]


def _timeout() -> float:
    return float(os.environ.get(TIMEOUT_ENV, "60"))


def lock_holder(exc: Exception) -> str:
    """``process 4242 (python -m corpus.build gsm8k ...)`` from DuckDB's lock error, as far as it says."""
    import re

    match = re.search(r"\(PID (\d+)\)", str(exc))
    if not match:
        return "another process"
    pid = int(match.group(1))
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
        cmd = " ".join(raw.decode(errors="replace").split())  # one line, whatever the arguments hold
    except OSError:
        cmd = ""
    if len(cmd) > 120:
        cmd = cmd[:117] + "..."
    return f"another process, pid {pid}" + (f" ({cmd})" if cmd else "")


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("lock" in text.lower())


class Catalog:
    """Handle on ``<root>/catalog.duckdb``; cheap to create, opens connections on demand."""

    def __init__(self, root: Path, timeout: float | None = None):
        self.root = Path(root)
        self.path = catalog_path(self.root)
        self.timeout = _timeout() if timeout is None else timeout
        self._migrated = False
        self._session: tuple[int, duckdb.DuckDBPyConnection] | None = None  # (thread id, connection)

    @contextlib.contextmanager
    def session(self) -> Iterator["Catalog"]:
        """One connection for a short run of operations (opening one costs ~20 ms): every
        :meth:`connect` of this thread inside reuses it. Hold it for bursts of catalog work,
        never across a long computation: it holds the file's write lock."""
        if self._session is not None:
            yield self
            return
        with self.connect() as con:
            self._session = (threading.get_ident(), con)
            try:
                yield self
            finally:
                self._session = None

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A connection, retried while another process holds the file lock."""
        if self._session is not None and self._session[0] == threading.get_ident():
            yield self._session[1]
            return
        if read_only and not self.path.exists():
            raise UserError(f"no catalog at {self.path}: build something first (python -m corpus.build ...)")
        self.root.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        deadline = started + self.timeout
        delay = 0.02
        announced = False
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only)
                break
            except duckdb.Error as exc:
                if not _is_lock_error(exc):
                    raise UserError(f"cannot open catalog {self.path}: {exc}") from None
                if time.monotonic() >= deadline:
                    raise CatalogBusy(
                        f"catalog {self.path} stayed locked by {lock_holder(exc)} for {self.timeout:.0f} s "
                        f"(raise {TIMEOUT_ENV} or wait for the other build)"
                    ) from None
                if not announced and self.timeout > 2 * ANNOUNCE_AFTER_S and time.monotonic() - started >= ANNOUNCE_AFTER_S:
                    print(f"catalog {self.path} is locked by {lock_holder(exc)}; retrying for up to "
                          f"{self.timeout:.0f} s ({TIMEOUT_ENV})", file=sys.stderr, flush=True)
                    announced = True
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 1.0)
        if announced:
            print(f"catalog {self.path}: got it after {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)
        try:
            if not read_only and not self._migrated:
                migrate(con)
                self._migrated = True
            yield con
        finally:
            con.close()

    # -- convenience -------------------------------------------------------------------------
    def query(self, sql: str, params: Sequence[Any] | None = None, read_only: bool = False) -> list[tuple]:
        with self.connect(read_only=read_only) as con:
            return con.execute(sql, params or []).fetchall()

    def query_dicts(self, sql: str, params: Sequence[Any] | None = None,
                    read_only: bool = False) -> list[dict[str, Any]]:
        """Rows as dicts; ``read_only`` for commands that only read (they share the file with each
        other instead of queueing on the write lock)."""
        with self.connect(read_only=read_only) as con:
            cur = con.execute(sql, params or [])
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, row)) for row in cur.fetchall()]

    def version(self, version_id: str) -> dict[str, Any] | None:
        rows = self.query_dicts("SELECT * FROM versions WHERE id = ?", [version_id])
        return rows[0] if rows else None

    def latest_version(self, source: str, status: str | None = "published") -> dict[str, Any] | None:
        sql = "SELECT * FROM versions WHERE source = ?"
        params: list[Any] = [source]
        if status:
            sql += " AND status = ?"
            params.append(status)
        rows = self.query_dicts(sql + " ORDER BY created_at DESC LIMIT 1", params)
        return rows[0] if rows else None

    def shards(self, version_id: str, split: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM shards WHERE version = ?"
        params: list[Any] = [version_id]
        if split:
            sql += " AND split = ?"
            params.append(split)
        return self.query_dicts(sql + " ORDER BY split, idx", params)

    def file_record(self, rel_path: str) -> dict[str, Any] | None:
        rows = self.query_dicts("SELECT * FROM files WHERE path = ?", [rel_path], read_only=True)
        return rows[0] if rows else None


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Apply every migration not yet recorded in ``schema_version``."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    done = {r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()}
    for number, sql in MIGRATIONS:
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in filter(str.strip, sql.split(";")):
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [number])
            con.execute("COMMIT")
        except Exception:
            rollback(con)  # never masks the real error (DuckDB may have rolled back already)
            raise


def rollback(con) -> None:
    """Roll back the open transaction, if there still is one.

    After some failures (a full disk while committing) DuckDB has already aborted the
    transaction, and ``ROLLBACK`` then raises "cannot rollback - no transaction is active",
    which used to replace the real error (ENOSPC) in the traceback and the message."""
    import duckdb

    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass
