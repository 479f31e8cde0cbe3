"""Wiki windows: bounded length, exact coverage with stride 0, overlap with a stride, articles."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer

from corpus.build import main as build_main
from corpus.sources.wiki import _text_articles
from tests.conftest import shared


def _build(root, tokenizer_path, src, *extra):
    assert build_main(["wiki", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir", str(root),
                       "--quiet", *extra]) == 0
    rows = []
    for path in sorted(root.glob("shards/wiki/*/*.parquet")):
        rows += pq.read_table(path).to_pylist()
    return rows


def _by_article(rows):
    articles: dict[str, list] = {}
    for row in rows:
        articles.setdefault(row["id"].rsplit("#w", 1)[0], []).append(row)
    for windows in articles.values():
        windows.sort(key=lambda r: json.loads(r["meta"])["window"])
    return articles


def test_wikitext_windows_cover_every_token_once(tmp_path, tokenizer_path):
    src = shared("wikitext2", "valid.txt")
    rows = _build(tmp_path, tokenizer_path, src, "--max-seq-len", "256")
    tok = Tokenizer.from_file(str(tokenizer_path))
    articles = _by_article(rows)
    texts = {f"wiki:{_id_of(r.ref)}": r.data["text"] for r in _text_articles(src)}
    assert len(articles) == len(texts) and len(texts) > 50
    for article_id, windows in articles.items():
        tokens = [t for w in windows for t in w["prompt_ids"] + w["target_ids"]]
        assert tokens == tok.encode(texts[article_id], add_special_tokens=False).ids
        assert "".join(w["prompt"] + w["target"] for w in windows) == texts[article_id]
        assert all(0 < w["n_tokens"] <= 256 for w in windows)
        assert all(len(w["prompt_ids"]) > 0 for w in windows)


def _id_of(ref: str) -> str:
    return ref.replace("/", "_")


def test_stride_overlaps_windows(tmp_path, tokenizer_path):
    src = shared("wikitext2", "valid.txt")
    rows = _build(tmp_path, tokenizer_path, src, "--max-seq-len", "128", "--stride", "16")
    for windows in _by_article(rows).values():
        for a, b in zip(windows, windows[1:]):
            a_meta, b_meta = json.loads(a["meta"]), json.loads(b["meta"])
            overlap = a_meta["start_token"] + a["n_tokens"] - b_meta["start_token"]
            assert 14 <= overlap <= 18  # 16, moved by at most a split character at either end
            assert (a["prompt_ids"] + a["target_ids"])[-overlap:] == (b["prompt_ids"] + b["target_ids"])[:overlap]


def test_plain_text_and_jsonl_articles(tmp_path, tokenizer_path):
    text = tmp_path / "notes.txt"
    text.write_text("First paragraph about foxes.\nStill the first.\n\nSecond paragraph about dogs.\n")
    rows = _build(tmp_path / "a", tokenizer_path, text, "--val-ratio", "0")
    assert sorted(r["prompt"] + r["target"] for r in rows) == [
        "First paragraph about foxes.\nStill the first.", "Second paragraph about dogs."]  # trailing blanks trimmed
    jl = tmp_path / "articles.jsonl"
    body = "".join(f"The fox jumps over log {i}. " for i in range(40))  # distinct windows: the suites bound duplicates
    jl.write_text(json.dumps({"id": "a1", "title": "Fox", "body": body}) + "\n")
    rows = _build(tmp_path / "b", tokenizer_path, jl, "--text-field", "body", "--id-field", "id",
                  "--max-seq-len", "64", "--val-ratio", "0")
    assert all(r["id"].startswith("wiki:a1#w") for r in rows) and len(rows) > 1
    assert "".join(r["prompt"] + r["target"] for r in sorted(rows, key=lambda r: json.loads(r["meta"])["window"])) \
        == body


def test_bad_stride_is_one_line_error(tmp_path, tokenizer_path, capsys):
    text = tmp_path / "t.txt"
    text.write_text("hello world\n")
    code = build_main(["wiki", "--from", str(text), "--tokenizer", str(tokenizer_path), "--data-dir",
                       str(tmp_path), "--max-seq-len", "64", "--stride", "64"])
    assert code == 2 and "--stride 64" in capsys.readouterr().err


@pytest.mark.parametrize("ratio", [0.0, 0.3])
def test_val_split_is_stable_when_examples_are_added(tmp_path, tokenizer_path, ratio):
    from corpus.rows import is_val

    ids = [f"gsm8k:{i}" for i in range(2000)]
    first = {i: is_val(i, 0, ratio) for i in ids[:1000]}
    again = {i: is_val(i, 0, ratio) for i in ids}
    assert all(again[i] == first[i] for i in first)
    share = sum(again.values()) / len(again)
    assert abs(share - ratio) < 0.05
