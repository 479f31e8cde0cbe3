"""Issue 14 item 7: corpus.sql cannot forge or destroy the catalog nor reach the machine;
corpus.repair is the explicit, backed-up write."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from corpus.build import main as build_main
from corpus.catalog import Catalog
from tests.foundation.helpers import run_cli, write_jsonl

GOOD = [{"question": f"Ann has {i} pens and finds {i + 2} more. How many now?",
         "answer": f"Ann has {i} + {i + 2} = {2 * i + 2} pens.\n#### {2 * i + 2}"} for i in range(60)]


@pytest.fixture(scope="module")
def root(tmp_path_factory, tokenizer_path) -> Path:
    tmp = tmp_path_factory.mktemp("sqlro")
    src = write_jsonl(tmp / "in.jsonl", GOOD)
    data = tmp / "data"
    assert build_main(["gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir", str(data),
                       "--quiet"]) == 0
    return data


def _state(root: Path) -> tuple:
    digest = hashlib.sha256((root / "catalog.duckdb").read_bytes()).hexdigest()
    tree = sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*") if p.is_file())
    return digest, tree


def _sql(root: Path, query: str, *extra: str):
    return run_cli("corpus.sql", "--data-dir", str(root), *extra, query)


@pytest.mark.parametrize("query, expect", [
    ("DROP TABLE files", "read-only: DROP statements are refused"),
    ("COPY (SELECT 1) TO '/tmp/x.csv'", "read-only: COPY statements are refused"),
    ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("DELETE FROM versions", "DELETE statements are refused"),
    ("UPDATE versions SET status = 'published'", "UPDATE statements are refused"),
    ("CREATE TABLE forged (a INT)", "CREATE statements are refused"),
    ("ATTACH '/tmp/other.duckdb' AS o", "ATTACH statements are refused"),
    ("SELECT 1; DROP TABLE files", "DROP statements are refused"),
    ("COPY (SELECT 1) TO 'shards/forged.parquet'", "COPY statements are refused"),
    ("SET enable_external_access = true", "SET statements are refused"),
    ("INSTALL httpfs", "refused"),
])
def test_audit_sql_refuses_writes_and_outside_files_in_one_line(root, query, expect):
    before = _state(root)
    existed = os.path.exists("/tmp/x.csv")
    p = _sql(root, query)
    assert p.returncode == 2 and p.stderr.count("\n") == 1 and "Traceback" not in p.stderr, p.stderr
    assert expect in p.stderr
    assert _state(root) == before  # nothing changed, not even the catalog's bytes
    assert os.path.exists("/tmp/x.csv") == existed


def test_audit_sql_still_reads_the_catalog_and_shards_in_the_root(root):
    (vid, rows), = Catalog(root).query("SELECT id, rows FROM versions")
    shard, = [r[0] for r in Catalog(root).query("SELECT path FROM shards WHERE split = 'train'")]
    p = _sql(root, f"SELECT count(*) AS n FROM read_parquet('{shard}')", "--json")
    assert p.returncode == 0, p.stderr
    assert '"n": ' in p.stdout
    p = _sql(root, "SELECT id, rows FROM versions", "--json")
    assert p.returncode == 0 and vid in p.stdout and str(rows) in p.stdout
    assert _sql(root, "SELECT count(*) FROM files").returncode == 0  # verify and build still work after


def test_a_long_read_is_stopped_at_the_budget_and_says_so(root):
    p = _sql(root, "SELECT count(*) FROM range(10000000000) a, range(1000) b", "--max-seconds", "0.5")
    assert p.returncode == 2 and p.stderr.count("\n") == 1, p.stderr
    assert "query stopped after 0.5 s: it held the catalog lock that builds wait for" in p.stderr


def test_repair_is_explicit_transactional_and_backed_up(root, tmp_path):
    (vid,), = Catalog(root).query("SELECT id FROM versions")
    p = run_cli("corpus.repair", "--data-dir", str(root), "UPDATE versions SET status = 'failed'")
    assert p.returncode == 2 and "pass --yes" in p.stderr
    p = run_cli("corpus.repair", "--data-dir", str(root), "--yes", "UPDATE versions SET status = 'nonsense_col' || x")
    assert p.returncode == 2 and "repair failed, nothing changed" in p.stderr
    p = run_cli("corpus.repair", "--data-dir", str(root), "--yes", "COPY versions TO '/tmp/leak-i14.csv'")
    assert p.returncode == 2 and not os.path.exists("/tmp/leak-i14.csv")
    p = run_cli("corpus.repair", "--data-dir", str(root), "--yes", f"UPDATE versions SET status = 'failed' WHERE id = '{vid}'")
    assert p.returncode == 0, p.stderr
    assert Catalog(root).query("SELECT status FROM versions") == [("failed",)]
    backups = sorted(root.glob("catalog.duckdb.bak-*"))
    assert backups  # the state before each write that ran
    import duckdb

    con = duckdb.connect(str(backups[-1]), read_only=True)
    assert con.execute("SELECT status FROM versions").fetchall() == [("published",)]
    con.close()
    run_cli("corpus.repair", "--data-dir", str(root), "--yes", f"UPDATE versions SET status = 'published' WHERE id = '{vid}'")
