"""Difficulty tiers: GSM8K follows the step count; re-tiering reads stored features only."""

from __future__ import annotations

import json
import shutil
from collections import Counter, defaultdict

import duckdb
import numpy as np
import pyarrow.parquet as pq
import pytest

from corpus.atomic import sha256_file
from corpus.build import main as build_main
from corpus.catalog import MIGRATIONS, Catalog
from corpus.errors import UserError
from corpus.retier import main as retier_main
from corpus.tiers import get_rule, shard_tiers, tier_histogram, version_rules
from tests.conftest import shared
from tests.sources.helpers import latest, rows_of


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory, tokenizer_path):
    """GSM8K built from a private copy of the raw file, which is then deleted."""
    work = tmp_path_factory.mktemp("tiers")
    raw = work / "gsm8k.jsonl"
    shutil.copyfile(shared("gsm8k", "test.jsonl"), raw)
    root = work / "data"
    assert build_main(["gsm8k", "--from", str(raw), "--tokenizer", str(tokenizer_path), "--data-dir", str(root),
                       "--quiet", "--limit", "400", "--val-ratio", "0.1", "--max-seq-len", "1024"]) == 0
    raw.unlink()  # re-tiering must not need it
    return root, latest(root)


def test_gsm8k_tiers_vary_and_follow_the_step_count(gsm8k):
    root, version = gsm8k
    rows = rows_of(root, version["id"])
    assert len(rows) == 400 and version["tier_rule"] == "gsm8k-steps@v1"
    steps_by_tier = defaultdict(list)
    for row in rows:
        steps = row["features"]["steps"]
        assert steps == sum(1 for line in row["target"].split("\n#### ")[0].splitlines() if line.strip())
        assert row["tier"] == (steps >= 3) + (steps >= 4) + (steps >= 6)
        steps_by_tier[row["tier"]].append(steps)
    assert sorted(steps_by_tier) == [0, 1, 2, 3]
    means = [np.mean(steps_by_tier[t]) for t in range(4)]
    assert means == sorted(means) and len(set(means)) == 4
    assert all(max(steps_by_tier[t]) < min(steps_by_tier[t + 1]) for t in range(3))  # disjoint step bands


def test_tiers_table_matches_the_rows(gsm8k):
    root, version = gsm8k
    rows = rows_of(root, version["id"])
    expected = Counter((r["split"], r["tier"]) for r in rows)
    tokens = Counter()
    for r in rows:
        tokens[(r["split"], r["tier"])] += r["n_tokens"]
    hist = tier_histogram(Catalog(root), version["id"])
    assert {(h["split"], h["tier"]): (h["rows"], h["tokens"]) for h in hist} == {
        k: (n, tokens[k]) for k, n in expected.items()}
    assert {h["split"] for h in hist} == {"train", "val"}


def test_retier_reads_stored_features_and_leaves_shards_untouched(gsm8k, capsys):
    root, version = gsm8k
    cat = Catalog(root)
    shards = cat.shards(version["id"])
    before = {s["path"]: ((root / s["path"]).stat().st_mtime_ns, sha256_file(root / s["path"])) for s in shards}
    assert retier_main([version["id"], "--rule", "gsm8k-calc@v1", "--data-dir", str(root), "--quiet"]) == 0
    assert "re-tiered under gsm8k-calc@v1: 2 side files" in capsys.readouterr().out
    assert {s["path"]: ((root / s["path"]).stat().st_mtime_ns, sha256_file(root / s["path"])) for s in shards} == before
    rule = get_rule("gsm8k-calc@v1")
    per_split = Counter()
    for s in shards:
        features = [json.loads(f) for f in pq.read_table(root / s["path"], columns=["features"]).column(0).to_pylist()]
        new = shard_tiers(cat, version["id"], s["split"], s["idx"], "gsm8k-calc@v1")
        old = shard_tiers(cat, version["id"], s["split"], s["idx"])
        assert new.dtype == np.int8 and len(new) == len(old) == s["rows"]
        assert new.tolist() == [rule(f) for f in features]
        assert old.tolist() == pq.read_table(root / s["path"], columns=["tier"]).column(0).to_pylist()
        per_split.update({(s["split"], int(t)): int(n) for t, n in zip(*np.unique(new, return_counts=True))})
    assert not np.array_equal(new, old)  # a different rule gives different tiers
    hist = tier_histogram(cat, version["id"], "gsm8k-calc@v1")
    assert {(h["split"], h["tier"]): h["rows"] for h in hist} == dict(per_split)
    assert version_rules(cat, version["id"]) == ["gsm8k-steps@v1", "gsm8k-calc@v1"]
    files = cat.query_dicts("SELECT path, sha256 FROM files WHERE version = ? AND role = 'tiers'", [version["id"]])
    assert len(files) == 2 and all(sha256_file(root / f["path"]) == f["sha256"] for f in files)
    assert all(f["path"].startswith(f"tiers/gsm8k/{version['id']}/gsm8k-calc@v1/") for f in files)


def test_retier_twice_writes_nothing_and_the_build_rule_needs_no_files(gsm8k, capsys):
    root, version = gsm8k
    assert retier_main(["gsm8k", "--rule", "gsm8k-calc", "--data-dir", str(root), "--quiet"]) == 0
    capsys.readouterr()
    snapshot = sorted((p, p.stat().st_mtime_ns) for p in (root / "tiers").rglob("*"))
    assert retier_main([version["id"], "--rule", "gsm8k-calc@v1", "--data-dir", str(root), "--quiet"]) == 0
    assert capsys.readouterr().out.startswith(f"already tiered: {version['id']} under gsm8k-calc@v1")
    assert sorted((p, p.stat().st_mtime_ns) for p in (root / "tiers").rglob("*")) == snapshot
    assert Catalog(root).query("SELECT count(*) FROM tier_files WHERE version = ?", [version["id"]])[0][0] == 2
    assert retier_main([version["id"], "--rule", "gsm8k-steps@v1", "--data-dir", str(root), "--quiet"]) == 0
    assert "its tiers are the shards' tier column" in capsys.readouterr().out


def test_retier_refuses_unknown_rules_and_rules_over_absent_features(gsm8k, capsys):
    root, version = gsm8k
    assert retier_main([version["id"], "--rule", "nope@v9", "--data-dir", str(root)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown tier rule 'nope@v9'; known: ") and err.count("\n") == 1
    assert retier_main([version["id"], "--rule", "scienceqa-grade@v1", "--data-dir", str(root), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "rule scienceqa-grade@v1 reads feature 'grade', which gsm8k rows lack" in err and err.count("\n") == 1
    assert Catalog(root).query("SELECT count(*) FROM tiers WHERE rule = 'scienceqa-grade@v1'")[0][0] == 0
    assert retier_main(["v0000", "--rule", "gsm8k-calc@v1", "--data-dir", str(root)]) == 2
    assert "no version 'v0000'" in capsys.readouterr().err
    with pytest.raises(UserError, match="no tiers under length-tokens@v1"):
        shard_tiers(Catalog(root), version["id"], "train", 0, "length-tokens@v1")


def test_rule_registry_knows_every_source_rule():
    for rule_id in ("gsm8k-steps@v1", "mbpp-code-lines@v1", "scienceqa-grade@v1", "humaneval-solution-lines@v1",
                    "wiki-sentence-length@v1", "length-tokens@v1", "gsm8k-calc@v1"):
        assert get_rule(rule_id).id == rule_id
    assert get_rule("mbpp-code-lines").version == 1
    assert get_rule("mbpp-code-lines@v1")({"code_lines": 7}) == 2
    assert get_rule("mbpp-code-lines@v1")({"code_lines": 100}) == 3


def test_migration_gives_old_tier_rows_their_build_rule(tmp_path):
    """A catalog made before tiers had a rule column is upgraded in place."""
    path = tmp_path / "catalog.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_at TIMESTAMP)")
    for statement in filter(str.strip, MIGRATIONS[0][1].split(";")):
        con.execute(statement)
    con.execute("INSERT INTO schema_version VALUES (1, now())")
    con.execute("INSERT INTO versions (id, source, tier_rule, status) "
                "VALUES ('vold', 'gsm8k', 'gsm8k-steps@v1', 'published')")
    con.execute("INSERT INTO tiers VALUES ('vold', 'train', 0, 5, 50), ('vold', 'train', 1, 3, 40)")
    con.close()
    rows = Catalog(tmp_path).query("SELECT tier, rows, rule FROM tiers ORDER BY tier")
    assert rows == [(0, 5, "gsm8k-steps@v1"), (1, 3, "gsm8k-steps@v1")]
    assert Catalog(tmp_path).query("SELECT max(version) FROM schema_version")[0][0] >= 2
