"""Suites at build time and on demand: a hand-edited shard fails, its version fails, nothing uses it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.publish import require_published
from corpus.shards import sidecar_paths
from corpus.quality.__main__ import main as quality_main
from tests.quality.conftest import SUBJECTS, THINGS, build, copy_root, shared_path

VOCAB = 1024


def the_version(root: Path, source: str = "jsonl") -> str:
    (vid,) = Catalog(root).query("SELECT id FROM versions WHERE source = ?", [source])[0]
    return vid


def edit_train_shard(root: Path, vid: str, edit, split: str = "train") -> Path:
    """Rewrite the first ``split`` shard's Parquet with ``edit(columns)`` applied (schema kept)."""
    path = root / Catalog(root).shards(vid, split)[0]["path"]
    table = pq.read_table(path)
    columns = table.to_pydict()
    edit(columns)
    pq.write_table(pa.Table.from_pydict(columns, schema=table.schema), path)
    return path


def token_over_vocab(c):
    c["prompt_ids"][3][1] = VOCAB  # the first id that is out of range


def duplicated_id(c):
    c["id"][5] = c["id"][4]


def overlong_row(c):
    c["target_ids"][2] = list(c["target_ids"][2]) + [7] * 130
    c["n_tokens"][2] = len(c["prompt_ids"][2]) + len(c["target_ids"][2])


def failing(root: Path, vid: str) -> list[tuple[str, dict]]:
    rows = Catalog(root).query_dicts(
        "SELECT shard, suite, failed_expectations FROM validations WHERE version = ? AND NOT success", [vid])
    return [(r["suite"], f) for r in rows for f in json.loads(r["failed_expectations"])]


def test_clean_build_is_published_with_every_suite_recorded(qa_root):
    catalog = Catalog(qa_root)
    vid = the_version(qa_root)
    assert catalog.version(vid)["status"] == "published"
    shards = catalog.shards(vid)
    assert [s["split"] for s in shards] == ["train"]
    rows = catalog.query_dicts("SELECT * FROM validations WHERE version = ? ORDER BY shard, suite", [vid])
    expected = {(s["path"], suite) for s in shards for suite in ("qa.rows", "shard.schema")}
    expected.add((str(Path(shards[0]["path"]).parent), "version.rows"))
    assert {(r["shard"], r["suite"]) for r in rows} == expected
    assert all(r["success"] and r["failed"] == 0 for r in rows)
    assert {r["suite"]: r["evaluated"] for r in rows} == {"qa.rows": 20, "shard.schema": 2, "version.rows": 5}
    for r in rows:  # GX results stored for the Data Docs
        assert json.loads((qa_root / r["report_path"]).read_text())["success"] is True
    assert require_published(catalog, vid)["id"] == vid


@pytest.mark.parametrize("edit, column", [(token_over_vocab, "max_token"), (duplicated_id, "id"),
                                          (overlong_row, "n_tokens")])
def test_hand_edited_shard_fails_and_is_refused(qa_root, tmp_path, capsys, edit, column):
    root = copy_root(qa_root, tmp_path / "data")
    vid = the_version(root)
    edit_train_shard(root, vid, edit)
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert f"jsonl {vid}: failed" in out
    catalog = Catalog(root)
    assert catalog.version(vid)["status"] == "failed"
    found = {(suite, f["expectation"], f["kwargs"].get("column")) for suite, f in failing(root, vid)}
    wanted = {"max_token": "expect_column_values_to_be_between", "id": "expect_column_values_to_be_unique",
              "n_tokens": "expect_column_values_to_be_between"}[column]
    assert ("qa.rows", wanted, column) in found
    with pytest.raises(UserError, match=rf"{vid} \(jsonl\) is failed, not published: failing: .* on {column}\)"):
        require_published(catalog, vid)
    _mixer_refuses(root, vid, tmp_path)


def _mixer_refuses(root: Path, vid: str, tmp_path: Path) -> None:
    """The mixer (corpus.mixing.resolve) will not take a failed version."""
    try:
        from corpus.mixing.manifest import load_manifest
        from corpus.mixing.resolve import resolve
    except ImportError:
        return
    sha = Catalog(root).version(vid)["tokenizer_sha"]
    manifest = tmp_path / "mix.toml"
    manifest.write_text(f'[run]\nname = "t"\n[data]\ntokenizer = "tokenizers/{sha}.json"\nmax_seq_len = 128\n'
                        f'train_samples = 10\n[[data.sources]]\nname = "jsonl"\nversion = "{vid}"\nweight = 1.0\n')
    with pytest.raises(UserError, match=rf"{vid} is failed, not published"):
        resolve(load_manifest(manifest), root, build_missing=False, log=lambda _: None)


def test_check_on_untouched_data_passes(qa_root, tmp_path, capsys):
    root = copy_root(qa_root, tmp_path / "data")
    assert quality_main(["check", "--data-dir", str(root)]) == 0
    assert "1 of 1 versions pass" in capsys.readouterr().out


def test_check_shows_progress_on_a_terminal(qa_root, tmp_path):
    from tests.foundation.helpers import run_in_terminal

    root = copy_root(qa_root, tmp_path / "data")
    code, drawn = run_in_terminal("corpus.quality", "check", "--data-dir", str(root))
    assert code == 0 and "1 of 1 versions pass" in drawn
    assert "check jsonl v" in drawn and "0/1" in drawn  # the bar, naming the version being checked


def test_report_shows_its_phases_on_a_terminal(qa_root, tmp_path):
    from tests.foundation.helpers import run_in_terminal

    root = copy_root(qa_root, tmp_path / "data")
    code, drawn = run_in_terminal("corpus.quality", "report", "--out", str(tmp_path / "rep"), "--data-dir", str(root),
                                  timeout=300)
    assert code == 0 and "PASS" in drawn
    assert "report: Data Docs of 1 versions" in drawn and "report: index.html and its charts" in drawn


def test_tampered_sidecar_fails_even_when_parquet_is_intact(qa_root, tmp_path):
    root = copy_root(qa_root, tmp_path / "data")
    vid = the_version(root)
    parquet = root / Catalog(root).shards(vid, "train")[0]["path"]
    tokens_path, _ = sidecar_paths(parquet)
    tokens = np.load(tokens_path)
    tokens[10] = VOCAB + 5
    np.save(tokens_path, tokens)
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    columns = {f["kwargs"].get("column") or f["kwargs"].get("column_B") for _, f in failing(root, vid)}
    assert {"sidecar_max_token", "sidecar_token_sum"} <= columns


def test_facts_frame_matches_the_rows(qa_root):
    from corpus.quality.facts import shard_facts

    catalog = Catalog(qa_root)
    shard = catalog.shards(the_version(qa_root), "train")[0]
    path = qa_root / shard["path"]
    facts = shard_facts(path).rows
    table = pq.read_table(path).to_pylist()
    assert len(facts) == len(table) == shard["rows"]
    for row, fact in zip(table, facts.to_pylist()):
        ids = row["prompt_ids"] + row["target_ids"]
        assert fact["id"] == row["id"]
        assert (fact["min_token"], fact["max_token"], fact["token_sum"]) == (min(ids), max(ids), sum(ids))
        assert (fact["sidecar_min_token"], fact["sidecar_max_token"], fact["sidecar_token_sum"]) == \
            (min(ids), max(ids), sum(ids))
        assert fact["n_tokens"] == fact["token_count"] == fact["sidecar_n_tokens"] == len(ids)
        assert fact["prompt_len"] == fact["sidecar_prompt_len"] == len(row["prompt_ids"])
        assert fact["prompt_chars"] == len(row["prompt"].strip()) and fact["json_ok"]
    assert len(set(facts["text_hash"].tolist())) == len(facts)  # unique


def test_documents_get_the_text_suite(tmp_path, tokenizer_path):
    text = tmp_path / "articles.txt"
    paragraphs = [" ".join(f"In part {p} line {i} the {SUBJECTS[i % 10]} met {p * 100 + i} {THINGS[p]}."
                           for i in range(12)) for p in range(6)]
    text.write_text("\n\n".join(paragraphs) + "\n")
    root = tmp_path / "data"
    assert build(root, tokenizer_path, "wiki", "--from", str(text), "--max-seq-len", "64", "--val-ratio", "0") == 0
    suites = {s for (s,) in Catalog(root).query("SELECT DISTINCT suite FROM validations WHERE success")}
    assert suites == {"text.rows", "shard.schema", "version.rows"}


def test_image_rows_must_decode(tmp_path, tokenizer_path):
    src = shared_path("scienceqa")
    root = tmp_path / "data"
    assert build(root, tokenizer_path, "science_qa", "--from", str(src), "--split", "test",
                 "--max-seq-len", "2048", "--role", "train", "--val-ratio", "0") == 0
    vid = the_version(root, "science_qa")
    catalog = Catalog(root)
    assert {s for (s,) in catalog.query("SELECT suite FROM validations WHERE version = ?", [vid])} >= {"image.rows"}

    def break_an_image(c):
        i = next(k for k, img in enumerate(c["image"]) if img)
        c["image"][i] = c["image"][i][: len(c["image"][i]) // 3]  # a truncated PNG

    edit_train_shard(root, vid, break_an_image, "test")  # ScienceQA's test split is evaluation data: one split
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    assert any(f["kwargs"].get("column") == "image_status" for _, f in failing(root, vid))


def test_version_level_suite_sees_an_id_in_both_splits(qa_root, tmp_path):
    """A val shard holding a copy of a train row: ids not unique across the version, splits not disjoint."""
    root = copy_root(qa_root, tmp_path / "data")
    vid = the_version(root)
    catalog = Catalog(root)
    train = catalog.shards(vid, "train")[0]
    src = root / train["path"]
    dst = src.with_name("val-00000.parquet")
    table = pq.read_table(src).slice(0, 1)
    pq.write_table(table.set_column(table.schema.get_field_index("split"), table.schema.field("split"),
                                    pa.array(["val"], pa.string())), dst)
    tokens, index = (np.load(path) for path in sidecar_paths(src))
    n = int(index[0, 2])
    tokens_path, index_path = sidecar_paths(dst)
    np.save(tokens_path, tokens[:n])
    np.save(index_path, index[:1])
    catalog.query("INSERT INTO shards VALUES (?, 'val', 0, ?, '', 0, 1, ?, ?, ?)",
                  [vid, str(dst.relative_to(root)), n, n, n])
    catalog.query("UPDATE versions SET rows = rows + 1 WHERE id = ?", [vid])
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    found = {(suite, f["kwargs"].get("column")) for suite, f in failing(root, vid)}
    # both shards pass on their own; the version suite sees the id twice (and its text twice: 1 of 81 > 1%)
    assert found == {("version.rows", "in_both_splits"), ("version.rows", "id"), ("version.rows", "text_hash")}


def test_unreadable_shard_fails_with_its_name(qa_root, tmp_path):
    root = copy_root(qa_root, tmp_path / "data")
    vid = the_version(root)
    path = root / Catalog(root).shards(vid, "train")[0]["path"]
    path.write_bytes(path.read_bytes()[:100])
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    with pytest.raises(UserError, match=r"train-00000.parquet: .*unreadable Parquet"):
        require_published(Catalog(root), vid)


def test_blank_target_fails(qa_root, tmp_path):
    """Required target: the build quarantines empties; the suite guards what slips past it."""
    root = copy_root(qa_root, tmp_path / "data")
    vid = the_version(root)

    def blank_target(c):
        c["target"][0] = "   "

    edit_train_shard(root, vid, blank_target)
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    assert {f["kwargs"].get("column") for _, f in failing(root, vid)} == {"target_chars"}
