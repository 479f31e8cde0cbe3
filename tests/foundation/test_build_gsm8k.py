"""GSM8K end to end: counts, idempotent rebuild, round-trip decoding, sidecars, readers."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from corpus.build import main as build_main
from corpus.catalog import Catalog
from corpus.shards import open_sidecars
from tests.conftest import shared
from tests.foundation.helpers import run_cli


@pytest.fixture(scope="module")
def gsm8k_root(tmp_path_factory, tokenizer_path):
    root = tmp_path_factory.mktemp("gsm")
    src = shared("gsm8k", "test.jsonl")
    assert build_main(["gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path),
                       "--data-dir", str(root), "--max-seq-len", "1024", "--allow-eval-data", "--quiet"]) == 0
    return root, src


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()
                  and p.name != "catalog.duckdb" and not p.name.endswith(".wal"))


def test_registers_every_example_and_nothing_quarantined(gsm8k_root):
    root, _ = gsm8k_root
    cat = Catalog(root)
    (vid, rows, quarantined, status), = cat.query("SELECT id, rows, quarantined, status FROM versions")
    assert (rows, quarantined, status) == (1319, 0, "published")
    per_split = dict(cat.query("SELECT split, sum(rows) FROM shards GROUP BY 1"))
    assert sum(per_split.values()) == 1319 and per_split["val"] > 0
    assert cat.query("SELECT sum(rows) FROM tiers WHERE version = ?", [vid])[0][0] == 1319


def test_rebuild_says_already_built_and_writes_nothing(gsm8k_root, tokenizer_path):
    root, src = gsm8k_root
    before = _tree(root)
    (vid,), = Catalog(root).query("SELECT id FROM versions")
    proc = run_cli("corpus.build", "gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path),
                   "--data-dir", str(root), "--max-seq-len", "1024", "--allow-eval-data")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(f"already built: {vid}")
    assert _tree(root) == before
    assert Catalog(root).query("SELECT count(*) FROM versions")[0][0] == 1


def test_decoding_ids_gives_back_the_stored_text(gsm8k_root, tokenizer_path):
    root, _ = gsm8k_root
    tok = Tokenizer.from_file(str(tokenizer_path))
    bos, eos = tok.token_to_id("<bos>"), tok.token_to_id("<eos>")
    for shard in Catalog(root).shards(Catalog(root).query("SELECT id FROM versions")[0][0]):
        table = pq.read_table(root / shard["path"]).to_pylist()
        assert len(table) == shard["rows"]
        for row in table:
            assert row["prompt_ids"][0] == bos and row["target_ids"][-1] == eos
            assert tok.decode(row["prompt_ids"], skip_special_tokens=True) == row["prompt"]
            assert tok.decode(row["target_ids"], skip_special_tokens=True) == row["target"]
            assert row["n_tokens"] == len(row["prompt_ids"]) + len(row["target_ids"])
            assert row["target"].endswith("#### " + json.loads(row["meta"])["answer"])


def test_sidecars_hold_the_same_tokens_as_parquet(gsm8k_root):
    root, _ = gsm8k_root
    for path in root.glob("shards/gsm8k/*/*.parquet"):
        rows = pq.read_table(path, columns=["prompt_ids", "target_ids"]).to_pylist()
        tokens, index = open_sidecars(path)
        assert index.shape == (len(rows), 3)
        for (start, plen, n), row in zip(index, rows):
            assert plen == len(row["prompt_ids"]) and n == plen + len(row["target_ids"])
            assert np.array_equal(tokens[start:start + n], row["prompt_ids"] + row["target_ids"])


def test_gsm8k_tiers_follow_step_count(gsm8k_root):
    root, _ = gsm8k_root
    frame = pl.read_parquet(list(root.glob("shards/gsm8k/*/*.parquet")))
    steps = frame["features"].map_elements(lambda f: json.loads(f)["steps"], return_dtype=pl.Int64)
    frame = frame.with_columns(steps=steps)
    assert frame["tier"].n_unique() >= 3
    means = frame.group_by("tier").agg(pl.col("steps").mean()).sort("tier")["steps"].to_list()
    assert means == sorted(means) and means[0] < means[-1]


def test_shard_opens_in_datasets_duckdb_and_polars(gsm8k_root):
    import datasets

    root, _ = gsm8k_root
    files = sorted(str(p) for p in root.glob("shards/gsm8k/*/*.parquet"))
    ds = datasets.load_dataset("parquet", data_files=files, split="train")
    assert len(ds) == 1319 and set(ds.column_names) >= {"id", "prompt_ids", "target_ids", "tier", "meta"}
    assert duckdb.connect().execute(f"SELECT count(*) FROM read_parquet({files!r})").fetchone()[0] == 1319
    assert pl.read_parquet(files).height == 1319


def test_sql_cli_answers_tokens_per_source(gsm8k_root):
    root, _ = gsm8k_root
    proc = run_cli("corpus.sql", "--data-dir", str(root), "--json",
                   "SELECT source, sum(tokens) AS tokens FROM versions GROUP BY 1")
    assert proc.returncode == 0, proc.stderr
    (row,) = json.loads(proc.stdout)
    assert row["source"] == "gsm8k" and row["tokens"] == Catalog(root).query("SELECT tokens FROM versions")[0][0]
    table = run_cli("corpus.sql", "--data-dir", str(root), "SELECT source, sum(tokens) FROM versions GROUP BY 1")
    assert table.returncode == 0 and "gsm8k" in table.stdout


def test_tokenizer_is_copied_and_recorded(gsm8k_root, tokenizer_path):
    from corpus.atomic import sha256_file

    root, _ = gsm8k_root
    sha = sha256_file(tokenizer_path)
    assert (root / "tokenizers" / f"{sha}.json").read_bytes() == tokenizer_path.read_bytes()
    assert Catalog(root).query("SELECT DISTINCT tokenizer_sha FROM versions") == [(sha,)]
