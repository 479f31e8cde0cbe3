"""Exact duplicates by normalized text: recorded within a version and across training versions."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq

from corpus.catalog import Catalog
from corpus.quality.dedup import duplicates_among
from tests.quality.conftest import build, qa_records, write_jsonl

ARGS = ("--target-field", "answer", "--id-field", "id", "--val-ratio", "0")


def variant(record: dict, new_id: str) -> dict:
    """The same text after normalization: other case, spacing and punctuation."""
    return {"id": new_id, "prompt": record["prompt"].upper().replace(";", " ... "),
            "answer": record["answer"].replace(",", " - ").lower()}


def test_duplicates_within_and_across_versions_are_recorded(tmp_path, tokenizer_path):
    records = qa_records(120)
    root = tmp_path / "data"
    src = write_jsonl(tmp_path / "a.jsonl", records + [variant(records[7], "again7")])
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), *ARGS) == 0  # 1 of 121 < 1%
    catalog = Catalog(root)
    jsonl_vid = catalog.query("SELECT id FROM versions WHERE source = 'jsonl'")[0][0]
    dups = catalog.query_dicts("SELECT * FROM duplicates WHERE version = ?", [jsonl_vid])
    # "first" is the smallest (shard, row id): jsonl:again7 sorts before jsonl:q7
    assert [(d["scope"], d["row_id"], d["first_row_id"], d["first_version"]) for d in dups] == \
        [("within", "jsonl:q7", "jsonl:again7", jsonl_vid)]
    assert catalog.query("SELECT count(*) FROM row_hashes WHERE version = ?", [jsonl_vid])[0][0] == 121

    other = qa_records(40, prefix="p") + [variant(r, f"copy{i}") for i, r in enumerate(records[:5])]
    parquet = tmp_path / "b.parquet"
    pq.write_table(pa.Table.from_pylist(other), parquet)
    assert build(root, tokenizer_path, "parquet", "--from", str(parquet), *ARGS) == 0
    parquet_vid = catalog.query("SELECT id FROM versions WHERE source = 'parquet'")[0][0]
    across = catalog.query_dicts("SELECT * FROM duplicates WHERE version = ? AND scope = 'across' ORDER BY row_id",
                                 [parquet_vid])
    assert [(d["row_id"], d["first_version"], d["first_row_id"]) for d in across] == \
        [(f"parquet:copy{i}", jsonl_vid, f"jsonl:q{i}") for i in range(5)]
    pairs = duplicates_among(catalog, [jsonl_vid, parquet_vid])
    assert len(pairs) == 1 and pairs[0]["rows"] == 5
    assert {pairs[0]["version_a"], pairs[0]["version_b"]} == {jsonl_vid, parquet_vid}


def test_too_many_duplicates_fail_the_suite(tmp_path, tokenizer_path):
    records = qa_records(30)
    src = write_jsonl(tmp_path / "in.jsonl", records + [variant(records[i], f"dup{i}") for i in range(3)])
    root = tmp_path / "data"
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), *ARGS) == 1
    catalog = Catalog(root)
    (vid, status) = catalog.query("SELECT id, status FROM versions")[0]
    assert status == "failed"
    failed = [f for (text,) in catalog.query("SELECT failed_expectations FROM validations WHERE NOT success")
              for f in json.loads(text)]
    assert {f["expectation"] for f in failed} == {"expect_column_proportion_of_unique_values_to_be_between"}
    assert all(abs(f["observed"] - 30 / 33) < 1e-9 for f in failed)
    assert catalog.query("SELECT count(*) FROM duplicates WHERE version = ? AND scope = 'within'", [vid])[0][0] == 3


def test_generated_tasks_report_duplicates_as_a_warning_unless_bounded(tmp_path, tokenizer_path):
    """synthetic:derivations repeats easy items by construction: reported, gating only on request."""
    from corpus.errors import UserError
    from corpus.sources import get_source

    try:
        get_source("synthetic:derivations")
    except UserError:
        import pytest

        pytest.skip("synthetic:derivations is not registered in this checkout")
    from corpus.publish import failing_expectations

    tok = tokenizer_path
    root = tmp_path / "data"
    args = ("synthetic:derivations", "--count", "400", "--val-ratio", "0", "--max-seq-len", "1024")
    assert build(root, tok, *args) == 0
    catalog = Catalog(root)
    (vid,) = catalog.query("SELECT id FROM versions")[0]
    assert failing_expectations(catalog, vid) == []
    warnings = failing_expectations(catalog, vid, severity="warning")
    assert warnings and all("warning: at most 5% of" in w for w in warnings)
    n_dups = catalog.query("SELECT count(*) FROM duplicates WHERE version = ?", [vid])[0][0]
    assert n_dups > 0.05 * 400
    assert build(root, tok, *args, "--max-dup-rate", "0.05") == 1  # an explicit bound gates
