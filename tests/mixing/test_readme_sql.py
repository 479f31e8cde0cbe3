"""Every ``python -m corpus.sql "..."`` in the README runs (placeholders filled with a real plan and
version), so the examples a newcomer copies stay right."""

from __future__ import annotations

import re
from pathlib import Path

import corpus
from corpus.catalog import Catalog

REPO = Path(__file__).resolve().parents[2]


def readme_queries() -> list[str]:
    text = (REPO / "README.md").read_text()
    return [" ".join(q.split()) for q in re.findall(r'python -m corpus\.sql "(.*?)"', text, re.S)]


def test_readme_sql_examples_run(mix_root):
    queries = readme_queries()
    assert len(queries) >= 7
    plan_id = Catalog(mix_root).query("SELECT id FROM mixes ORDER BY created_at LIMIT 1")[0][0]
    for q in queries:
        sql = q.replace("'p…'", f"'{plan_id}'")
        frame = corpus.query(sql, data_dir=mix_root)  # raises CorpusError on a broken example
        if "FROM versions" in sql:
            assert len(frame) == 3 and frame["source"].to_list() == sorted(frame["source"].to_list())
        if "FROM tiers t" in sql:
            assert frame["rows"].sum() == Catalog(mix_root).query("SELECT sum(rows) FROM versions")[0][0]


def test_sql_lists_tables_and_views(mix_root):
    from tests.mixing.helpers import run_cli

    proc = run_cli("corpus.sql", "--tables", "--json", "--data-dir", str(mix_root))
    assert proc.returncode == 0, proc.stderr
    import json

    listed = {r["name"]: r for r in json.loads(proc.stdout)}
    assert listed["versions"]["type"] == "table" and "tier_rule" in listed["versions"]["columns"]
    assert listed["mix_share"]["type"] == "view" and {"mix_tier_window", "mix_positions"} <= set(listed)
    bad = run_cli("corpus.sql", "--data-dir", str(mix_root))
    assert bad.returncode == 2 and "give a QUERY or --tables" in bad.stderr
