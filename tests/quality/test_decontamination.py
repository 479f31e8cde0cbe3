"""Decontamination: eval items in a training file are dropped (or flagged) before publishing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.quality.__main__ import main as quality_main
from corpus.quality.decontaminate import BOILERPLATE_ITEMS, find_hits, index_texts
from corpus.quality.text import ngram_hashes, normalize_one
from tests.quality.conftest import build, qa_records, shared_path, write_jsonl


def shard_ids(root: Path, vid: str) -> set[str]:
    return {i for s in Catalog(root).shards(vid) for i in pq.read_table(root / s["path"], columns=["id"])
            .column("id").to_pylist()}


def version_of(root: Path, source: str, kind: str = "train") -> str:
    return Catalog(root).query("SELECT id FROM versions WHERE source = ? AND kind = ? ORDER BY created_at DESC",
                               [source, kind])[0][0]


@pytest.fixture(scope="module")
def gsm8k_eval_root(tmp_path_factory, tokenizer_path) -> Path:
    """GSM8K test (first 60 problems) registered as an evaluation set."""
    test = shared_path("gsm8k", "test.jsonl")
    root = tmp_path_factory.mktemp("gsm8k-eval")
    head = write_jsonl(root.parent / "gsm8k-head" / "test.jsonl",
                       [json.loads(line) for line in test.read_text().splitlines()[:60]])
    assert build(root, tokenizer_path, "gsm8k", "--from", str(head), "--split", "test", "--role", "eval",
                 "--val-ratio", "0") == 0
    return root


def leaked_training_file(tmp_path: Path) -> tuple[Path, list[dict]]:
    """40 own problems plus 3 GSM8K test problems (reworded whitespace/case must not hide them)."""
    gsm = [json.loads(line) for line in shared_path("gsm8k", "test.jsonl").read_text().splitlines()[10:13]]
    leaks = [{"id": f"leak{i}", "prompt": "  " + r["question"].upper(), "answer": r["answer"]}
             for i, r in enumerate(gsm)]
    return write_jsonl(tmp_path / "train.jsonl", qa_records(40) + leaks), gsm


@pytest.mark.parametrize("policy", ["drop", "flag"])
def test_gsm8k_test_questions_in_training_data(gsm8k_eval_root, tmp_path, tokenizer_path, policy):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(gsm8k_eval_root, root)
    src, gsm = leaked_training_file(tmp_path)
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), "--target-field", "answer", "--id-field", "id",
                 "--decontaminate", policy, "--val-ratio", "0") == 0
    catalog = Catalog(root)
    vid, eval_vid = version_of(root, "jsonl"), version_of(root, "gsm8k", "eval")
    assert catalog.version(vid)["status"] == "published"
    leaked = {f"jsonl:leak{i}" for i in range(3)}
    hits = catalog.query_dicts("SELECT * FROM decontamination WHERE version = ? ORDER BY row_id", [vid])
    assert {h["row_id"] for h in hits} == leaked
    assert {h["benchmark"] for h in hits} == {"gsm8k"} and {h["eval_version"] for h in hits} == {eval_vid}
    assert {h["action"] for h in hits} == {"dropped" if policy == "drop" else "flagged"}
    # each hit names the GSM8K item it matches, and the n-gram is a piece of that question
    eval_rows = {r["id"]: r for s in catalog.shards(eval_vid) for r in pq.read_table(root / s["path"]).to_pylist()}
    for h, problem in zip(hits, gsm):
        assert eval_rows[h["item"]]["prompt"] == problem["question"].strip()
        assert len(h["ngram"].split()) == 13 and h["ngram"] in normalize_one(problem["question"])
    ids = shard_ids(root, vid)
    assert len(ids) == (40 if policy == "drop" else 43)
    assert (leaked & ids) == (set() if policy == "drop" else leaked)
    assert catalog.version(vid)["rows"] == len(ids)
    if policy == "flag":  # the shard a flagged row sits in
        assert {h["shard"] for h in hits} == {s["path"] for s in catalog.shards(vid, "train")}
    out = tmp_path / "report"
    assert quality_main(["report", "--out", str(out), "--data-dir", str(root)]) == 0
    summary = (out / "summary.md").read_text()
    for row_id in leaked:
        assert f"| `{row_id}` | {'dropped' if policy == 'drop' else 'flagged'} | gsm8k |" in summary
    assert len((out / "decontamination.csv").read_text().splitlines()) == 4
    assert '<img alt="Decontamination hits" src="data:image/png;base64,' in (out / "index.html").read_text()


def test_eval_set_from_a_jsonl_and_custom_ngram(tmp_path, tokenizer_path):
    """Any version built with --role eval is indexed; --ngram and --min-overlap tune the rule; ids follow."""
    root = tmp_path / "data"
    evals = [{"id": f"e{i}", "prompt": f"Benchmark item {i}: the {w} crossed the old stone bridge before sunrise "
                                       f"carrying {i + 3} lanterns for the festival", "answer": f"{i + 3}"}
             for i, w in enumerate(["fox", "owl", "deer", "hare", "wolf"])]
    assert build(root, tokenizer_path, "jsonl", "--from", str(write_jsonl(tmp_path / "eval.jsonl", evals)),
                 "--target-field", "answer", "--id-field", "id", "--role", "eval", "--val-ratio", "0") == 0
    # "near" shares 8 words with e1 ("the owl crossed the old stone bridge before": 1 of e1's 11 8-grams);
    # "copy" holds 17 of e2's 18 words (5 of its 6 13-grams)
    train = qa_records(20) + [
        {"id": "near", "prompt": "Yesterday the owl crossed the old stone bridge before lunch and rested.",
         "answer": "x"},
        {"id": "copy", "prompt": "Quote: item 2: the deer crossed the old stone bridge before sunrise carrying 5 "
                                 "lanterns for the festival!", "answer": "yes"},
    ]
    src = write_jsonl(tmp_path / "train.jsonl", train)
    common = ["jsonl", "--from", str(src), "--target-field", "answer", "--id-field", "id", "--val-ratio", "0"]
    assert build(root, tokenizer_path, *common) == 0
    assert build(root, tokenizer_path, *common, "--ngram", "8", "--min-overlap", "0.05") == 0
    catalog = Catalog(root)
    rows = catalog.query("SELECT v.config, d.row_id, d.item FROM decontamination d JOIN versions v ON v.id = d.version")
    by_n: dict[int, set] = {}
    for config, row_id, item in rows:
        by_n.setdefault(json.loads(config)["decontamination"]["n"], set()).add((row_id, item))
    assert by_n == {13: {("jsonl:copy", "jsonl:e2")}, 8: {("jsonl:copy", "jsonl:e2"), ("jsonl:near", "jsonl:e1")}}
    assert {json.loads(c)["decontamination"]["min_overlap"] for (c,) in
            catalog.query("SELECT config FROM versions WHERE kind = 'train'")} == {0.5, 0.05}
    assert len(catalog.query("SELECT id FROM versions WHERE kind = 'train'")) == 2  # different version ids


def test_off_and_unknown_eval_set(tmp_path, tokenizer_path, capsys):
    root = tmp_path / "data"
    src = write_jsonl(tmp_path / "train.jsonl", qa_records(10))
    args = ["jsonl", "--from", str(src), "--target-field", "answer", "--id-field", "id"]
    assert build(root, tokenizer_path, *args, "--decontaminate-against", "gsm8k") == 2
    assert "--decontaminate-against gsm8k: no published eval version" in capsys.readouterr().err
    assert build(root, tokenizer_path, *args, "--decontaminate", "off") == 0
    (config,) = Catalog(root).query("SELECT config FROM versions")[0]
    assert json.loads(config)["decontamination"] is None


def test_ngram_hashes_normalize_and_respect_row_bounds():
    texts = ["One, two; THREE four!", "three four five", "one two"]
    rows, starts, grams, words = ngram_hashes(texts, 2)
    pairs = [" ".join(words.slice(s, 2).to_pylist()) for s in starts]
    assert list(rows) == [0, 0, 0, 1, 1, 2]  # no 2-gram spans the end of a row and the start of the next
    assert pairs == ["one two", "two three", "three four", "three four", "four five", "one two"]
    assert grams[2] == grams[3] and grams[0] == grams[5] and len(set(grams.tolist())) == 4
    rows3, _, _, _ = ngram_hashes(texts, 3)
    assert list(rows3) == [0, 0, 1]


def test_template_ngrams_shared_by_many_eval_items_are_not_contamination():
    """MBPP-style prompts share a template; only an item's own text counts as a hit."""
    template = "You are an expert Python programmer, and here is your task:"
    tasks = [f"{template} write a function that returns the {k}th prime number below {k * 100} for test {k}."
             for k in range(BOILERPLATE_ITEMS)]
    items = [("mbpp", "v1", f"mbpp:{k}") for k in range(len(tasks))]
    index = index_texts(13, [("v1", "mbpp")], items, list(range(len(tasks))), tasks)
    assert index.boilerplate > 0 and index.short_texts == 0
    training = [f"{template} write a function that sorts a list of strings by their length in reverse order.",
                tasks[3].replace("expert", "EXPERT!")]
    hits = find_hits(index, training)
    assert list(hits) == [1] and hits[1][:3] == ("mbpp", "v1", "mbpp:3")
    assert list(find_hits(index, training, min_overlap=0.01)) == [1]  # template grams are not in the index
    fewer = index_texts(13, [("v1", "mbpp")], items[:-1], list(range(len(tasks) - 1)), tasks[:-1])
    assert fewer.boilerplate == 0  # below the cut the template stays indexed: a low bar makes it hit,
    assert set(find_hits(fewer, training, min_overlap=0.01)) == {0, 1}
    assert list(find_hits(fewer, training)) == [1]  # while the default overlap still needs most of the item


def test_overlap_rule_counts_distinct_ngrams_of_one_eval_text():
    question = "Natalia sold clips to 48 of her friends in April and then she sold half as many clips in May"
    answer = "In May she sold 48 / 2 = 24 clips so altogether she sold 48 + 24 = 72 clips in April and May"
    index = index_texts(13, [("v", "gsm8k")], [("gsm8k", "v", "gsm8k:0")], [0, 0], [question, answer])
    assert index.grams.tolist() == [8, 8] and index.short_texts == 0
    half = " ".join(question.split()[:16])  # 4 of the question's 8 13-grams
    less = " ".join(question.split()[:15])  # 3 of 8
    hits = find_hits(index, [question, "Q: " + answer + " Thanks!", half, less, "nothing in common here"])
    assert sorted(hits) == [0, 1, 2]
    assert hits[2][3] == normalize_one(" ".join(question.split()[:13]))


def test_flagged_hits_follow_their_rows_when_near_dedup_drop_rewrites_the_split(gsm8k_eval_root, tmp_path,
                                                                                 tokenizer_path):
    """Tasks write their own shards; near-dedup drop writes the split again, and the rows after the
    dropped ones land in other files: each flagged hit names the file its row is in afterwards."""
    import shutil

    from tests.quality.test_near_dedup import near_records

    root = tmp_path / "data"
    shutil.copytree(gsm8k_eval_root, root)
    records, copies = near_records()
    _, gsm = leaked_training_file(tmp_path)
    leaks = [{"id": f"leak{i}", "prompt": r["question"], "answer": r["answer"]} for i, r in enumerate(gsm)]
    src = write_jsonl(tmp_path / "near-and-leaks.jsonl", records + leaks)
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), "--target-field", "answer", "--id-field", "id",
                 "--val-ratio", "0", "--max-dup-rate", "0.2", "--task-records", "32", "--decontaminate", "flag",
                 "--near-dedup", "drop") == 0
    catalog = Catalog(root)
    vid = version_of(root, "jsonl")
    assert catalog.version(vid)["rows"] == len(records) + len(leaks) - len(copies)  # the copies went
    hits = catalog.query_dicts("SELECT shard, row_id FROM decontamination WHERE version = ?", [vid])
    assert {h["row_id"] for h in hits} == {f"jsonl:leak{i}" for i in range(3)}
    for h in hits:
        assert (root / h["shard"]).is_file(), h
        assert h["row_id"] in pq.read_table(root / h["shard"], columns=["id"]).column("id").to_pylist()
