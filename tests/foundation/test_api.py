"""The Python API: the README's notebook example runs as it is, its objects hold the numbers the
catalog and the files hold, and errors are one CorpusError line like the CLI's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import corpus

REPO = Path(__file__).resolve().parents[2]


def readme_example() -> str:
    text = (REPO / "README.md").read_text()
    marker = text.index("<!-- notebook-example")
    return re.search(r"```python\n(.*?)```", text[marker:], re.S).group(1)


@pytest.fixture
def notebook(tmp_path, monkeypatch):
    """The README block run in a fresh directory with its own data root, as a notebook would."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HRM_DATA_DIR", str(tmp_path / "data"))
    namespace: dict = {}
    exec(compile(readme_example(), "README.md notebook example", "exec"), namespace)
    return namespace, tmp_path / "data"


def test_readme_notebook_example_runs_end_to_end(notebook):
    ns, root = notebook
    arith, plan, batch, tiers, shares, rows = (ns[k] for k in ("arith", "plan", "batch", "tiers", "shares", "rows"))
    assert isinstance(arith, corpus.Version) and arith.status == "published" and arith.kind == "train"
    assert arith.rows == sum(arith.split_rows.values()) == 1500 and arith.quarantined == 0
    assert arith.tokens == int(corpus.query("SELECT sum(n_tokens) AS n FROM read_parquet(?)",
                                            params=[[str(p) for p in arith.shard_paths]])["n"][0])
    assert all(p.is_file() and p.parent == arith.directory for p in arith.shard_paths)
    assert tiers["rows"].sum() == arith.rows and sorted(set(tiers["tier"].to_list())) == [0, 1, 2]
    assert len(rows) == arith.split_rows["train"]
    first = rows.row(0, named=True)
    assert arith.text(first) == first["prompt"] + first["target"]
    assert batch.tokens.shape[0] == 8 and batch.lengths[0] > 0
    assert plan.id.startswith("p") and plan.tokenizer.sha256 == arith.tokenizer_sha
    realized = dict(zip(shares["tier"].to_list(), shares["share"].to_list()))
    assert realized == pytest.approx({0: 0.5, 1: 0.3, 2: 0.2}, abs=0.02)
    again = corpus.build_source("synthetic:arith", tokenizer="tok.json", count=1500, tiers="0-2", seed=3)
    assert again.already_built and again.id == arith.id
    assert corpus.version(arith.id).tokens == arith.tokens and corpus.version("synthetic:arith").id == arith.id
    assert corpus.versions()["id"].to_list() == [arith.id]
    assert len(arith.frame("val")) == arith.split_rows["val"] and len(arith.frame()) == arith.rows


def test_errors_are_one_corpus_error_line_like_the_cli(tmp_path, monkeypatch, tokenizer_path):
    monkeypatch.setenv("HRM_DATA_DIR", str(tmp_path / "data"))
    with pytest.raises(corpus.CorpusError, match=r"^tokenizer not found: .*t\.json$"):
        corpus.build_source("gsm8k", str(tmp_path / "nope.jsonl"), tokenizer=str(tmp_path / "t.json"))
    with pytest.raises(corpus.CorpusError, match=r"^input not found: .*nope\.jsonl$"):
        corpus.build_source("gsm8k", str(tmp_path / "nope.jsonl"), tokenizer=str(tokenizer_path))
    with pytest.raises(corpus.CorpusError, match=r"^corpus.build gsm8k: unknown option 'limt' \(did you mean limit\?\)$"):
        corpus.build_source("gsm8k", limt=3)
    with pytest.raises(corpus.CorpusError, match="unknown source 'gsm9k'"):
        corpus.build_source("gsm9k")
    with pytest.raises(corpus.CorpusError, match=r"^notebook.toml: data\.sources\[0\] \(wiki\)\.weight: "):
        corpus.plan({"run": {"name": "x"}, "data": {"tokenizer": "t.json", "max_seq_len": 64, "train_samples": 4,
                                                    "sources": [{"name": "wiki", "weight": "heavy"}]}})


def test_query_is_the_read_only_audit_surface(notebook):
    """corpus.query keeps corpus.sql's rules: no writes, no files outside the data root."""
    ns, root = notebook
    before = (root / "catalog.duckdb").read_bytes()
    for sql, why in (("DROP TABLE files", "read-only"), ("SELECT * FROM read_csv('/etc/passwd')", "query failed"),
                     ("COPY (SELECT 1) TO 'x.csv'", "read-only")):
        with pytest.raises(corpus.CorpusError, match=why):
            corpus.query(sql)
    assert (root / "catalog.duckdb").read_bytes() == before and not (root / "x.csv").exists()
    assert corpus.query("SELECT count(*) AS n FROM files")["n"][0] > 0


def test_import_corpus_stays_light():
    import subprocess
    import sys

    code = "import sys, corpus; print(sorted(m for m in ('duckdb', 'polars', 'pyarrow', 'torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}).stdout.strip()
    assert out == "[]"


def test_a_version_directory_is_a_plain_parquet_dataset(notebook):
    """Hugging Face datasets reads a version directory with data_dir= (the sidecars are hidden)."""
    import datasets

    ns, root = notebook
    arith = ns["arith"]
    loaded = datasets.load_dataset("parquet", data_dir=str(arith.directory), cache_dir=str(root.parent / "hf-cache"))
    assert sorted(loaded) == ["train", "validation"]  # val-*.parquet is datasets' validation split
    assert sum(len(split) for split in loaded.values()) == arith.rows
    assert loaded["train"][0]["prompt_ids"] == arith.frame("train").row(0, named=True)["prompt_ids"]
