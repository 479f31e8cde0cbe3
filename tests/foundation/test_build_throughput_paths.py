"""The fast paths of a build give exactly what the plain ones give.

The WikiText reader cuts a clean file at its title lines with one regex scan per block; the line
reader (the reference: it also handles invalid bytes) must agree article for article. Shards
stream out as row groups of fixed row counts, so the bytes must not depend on how the input was
batched; and the memory-map sidecars must hold exactly the Parquet token lists.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpus.build import main as build_main
from corpus.shards import RowBatch, ShardWriter, open_sidecars
from corpus.sources import wiki
from tests.conftest import shared


def test_block_reader_matches_line_reader_on_wikitext2(tmp_path, monkeypatch):
    src = shared("wikitext2", "valid.txt")
    assert wiki._clean_wikitext(src)
    assert list(wiki._text_articles(src)) == list(wiki._line_articles(src))
    # blocks far smaller than an article: titles and articles that straddle block edges
    monkeypatch.setattr(wiki, "BLOCK", 4096)
    assert list(wiki._wikitext_articles(src)) == list(wiki._line_articles(src))


@pytest.mark.parametrize("text", [
    " = T1 = \n\nabc\n = T2 = \nx\n",
    "\n\n  intro\n\n = T1 = \nabc\n = = Sub = = \nq\n = T2 = \n",
    "a\n = T = \nb",                          # no final line break
    "\u3000\n = T = \n\u00a0body\n\n\n",      # non-ASCII whitespace, trailing blank lines
    " = T = \r\nwindows line ends\r\n = U = \r\n",  # CRLF: not titles (as the line reader says)
])
def test_block_reader_matches_line_reader_on_edge_cases(tmp_path, text, monkeypatch):
    path = tmp_path / "edge.txt"
    path.write_text(text, encoding="utf-8", newline="")
    monkeypatch.setattr(wiki, "BLOCK", 7)
    assert list(wiki._text_articles(path)) == list(wiki._line_articles(path))


def test_invalid_utf8_goes_line_by_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(b" = T = \nok\n\xff\xfe broken\n = U = \nfine\n")
    assert not wiki._clean_wikitext(path)
    records = list(wiki._text_articles(path))
    assert [r.ref.rsplit("/", 1)[-1] for r in records] == ["bad.txt:3", "bad.txt:1", "bad.txt:4"]
    assert records[0].data.reason.startswith("invalid UTF-8")


def _batch(n_rows: int, seed: int) -> RowBatch:
    rng = np.random.default_rng(seed)
    p = rng.integers(1, 9, n_rows)
    t = rng.integers(0, 9, n_rows)
    tokens = rng.integers(0, 500, int((p + t).sum())).astype(np.int32)
    ids = [f"s:{seed}-{i}" for i in range(n_rows)]
    return RowBatch(ids=ids, tiers=rng.integers(0, 3, n_rows).astype(np.int8), tokens=tokens,
                    prompt_lens=p.astype(np.int64), target_lens=t.astype(np.int64),
                    prompts=[f"p{i}" for i in ids], targets=[f"t{i}" for i in ids],
                    features=["{}"] * n_rows, metas=["{}"] * n_rows,
                    images=[None] * n_rows, image_widths=[None] * n_rows, image_heights=[None] * n_rows)


def _write(directory, batches, **limits):
    writer = ShardWriter(directory, "s", "train", "uint16", row_group_rows=50, row_group_tokens=10**9, **limits)
    for b in batches:
        writer.add(b)
    return writer.close()


def _digests(directory):
    return {p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_shard_bytes_do_not_depend_on_batching(tmp_path):
    whole = RowBatch.concat([_batch(130, 1), _batch(171, 2)])
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    shards_a = _write(a, [whole], rows_per_shard=120, tokens_per_shard=900)
    cuts = [0, 1, 2, 49, 50, 51, 119, 120, 200, 299, 301]
    shards_b = _write(b, [whole.slice(lo, hi) for lo, hi in zip(cuts, cuts[1:])], rows_per_shard=120,
                      tokens_per_shard=900)
    assert _digests(a) == _digests(b)
    assert [s.rows for s in shards_a] == [s.rows for s in shards_b]
    assert sum(s.rows for s in shards_a) == 301 and len(shards_a) >= 3
    for s in shards_a:  # full shards stop at the row or token bound; row groups of 50
        assert s.rows <= 120
        groups = [pq.ParquetFile(s.parquet).metadata.row_group(g).num_rows
                  for g in range(pq.ParquetFile(s.parquet).metadata.num_row_groups)]
        assert all(g == 50 for g in groups[:-1]) and 0 < groups[-1] <= 50
    for s in shards_a[:-1]:
        assert s.rows == 120 or s.tokens_total >= 900
        assert s.tokens_total - s.max_len < 900


def test_sidecars_hold_the_parquet_tokens(tmp_path):
    shards = _write(tmp_path, [_batch(173, 3)], rows_per_shard=100, tokens_per_shard=10**9)
    for s in shards:
        table = pq.read_table(s.parquet)
        tokens, index = open_sidecars(s.parquet)
        for row, (start, prompt_len, n) in zip(table.to_pylist(), index):
            assert list(tokens[start:start + n]) == row["prompt_ids"] + row["target_ids"]
            assert prompt_len == len(row["prompt_ids"]) and n == row["n_tokens"]


def test_wiki_build_bytes_do_not_depend_on_batch_size_or_workers(tmp_path, tokenizer_path):
    src = shared("wikitext2", "valid.txt")
    outputs = []
    for batch, workers in (("7", "1"), ("8192", "1"), ("5", "2")):
        root = tmp_path / f"{batch}-{workers}"
        assert build_main(["wiki", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir", str(root),
                           "--max-seq-len", "256", "--batch-size", batch, "--workers", workers, "--threads", "1",
                           "--quiet"]) == 0
        outputs.append(_digests(root / "shards"))
    assert outputs[0] == outputs[1] == outputs[2] and len(outputs[0]) >= 6


def test_shard_of_names_the_shard_each_row_lands_in(tmp_path):
    writer = ShardWriter(tmp_path, "s", "train", "uint16", row_group_rows=50, row_group_tokens=300,
                         rows_per_shard=120, tokens_per_shard=900)
    predicted = {}
    for seed, n in enumerate((37, 1, 130, 64, 90)):
        batch = _batch(n, seed)
        predicted.update(zip(batch.ids, writer.shard_of(batch).tolist()))
        writer.add(batch)
    landed = {row_id: s.idx for s in writer.close() for row_id in pq.read_table(s.parquet, columns=["id"])["id"].to_pylist()}
    assert landed == predicted and len(set(landed.values())) >= 3


def test_row_groups_end_at_the_token_bound(tmp_path):
    batch = _batch(300, 5)
    writer = ShardWriter(tmp_path, "s", "train", "uint16", row_group_rows=1000, row_group_tokens=200)
    writer.add(batch)
    (shard,) = writer.close()
    meta = pq.ParquetFile(shard.parquet).metadata
    groups = [meta.row_group(g).num_rows for g in range(meta.num_row_groups)]
    assert sum(groups) == 300 and len(groups) > 5
    n = batch.n_tokens
    start = 0
    for g in groups[:-1]:  # each group: the fewest rows whose tokens reach 200
        assert n[start:start + g].sum() >= 200 > n[start:start + g - 1].sum()
        start += g


@pytest.mark.parametrize("source,make", [
    ("wiki", lambda: ["--from", str(shared("wikitext2", "valid.txt")), "--max-seq-len", "256", "--batch-size", "5"]),
    ("gsm8k", lambda: ["--from", str(shared("gsm8k", "train_sample.jsonl")), "--batch-size", "64"]),
    ("science_qa", lambda: ["--from", str(shared("scienceqa")), "--split", "all", "--batch-size", "16"]),
])
def test_facts_taken_while_writing_equal_the_files_facts(tmp_path, tokenizer_path, source, make, monkeypatch):
    """The build validates the facts it took on the rows it wrote; they must be exactly the facts
    computed afresh from the files (what corpus.quality check does)."""
    import corpus.publish as publish_module
    from corpus.catalog import Catalog
    from corpus.quality.facts import shard_facts

    seen = {}
    real = publish_module.publish

    def spy(catalog, root, vid, facts=None):
        seen.update(facts or {})
        return real(catalog, root, vid, facts=facts)

    monkeypatch.setattr(publish_module, "publish", spy)
    assert build_main([source, *make(), "--tokenizer", str(tokenizer_path), "--data-dir", str(tmp_path), "--quiet",
                       "--allow-eval-data"]) == 0
    shards = Catalog(tmp_path).query("SELECT path FROM shards")
    assert {p for (p,) in shards} == set(seen) and len(seen) >= 1
    for rel, taken in seen.items():
        fresh = shard_facts(tmp_path / rel)
        assert list(sorted(taken.rows.columns)) == list(sorted(fresh.rows.columns))
        for column in fresh.rows.columns:
            a, b = np.asarray(taken.rows[column]), np.asarray(fresh.rows[column])
            assert a.dtype == b.dtype, column
            if a.dtype.kind == "f":
                np.testing.assert_array_equal(a, b, err_msg=column)
            else:
                assert a.tolist() == b.tolist(), column
        assert taken.schema.equals(fresh.schema) and taken.with_image == fresh.with_image
