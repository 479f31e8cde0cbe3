"""MBPP: published split sizes by task_id, both layouts, prompts/targets/tests, tiers, bad input."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections import Counter

import pytest

from corpus.catalog import Catalog
from corpus.sources.mbpp import MBPP
from tests.conftest import shared
from tests.sources.helpers import build, latest, quarantine, rows_of, write_jsonl

SIZES = {"train": 374, "validation": 90, "test": 500, "prompt": 10}


@pytest.fixture(scope="module")
def full(tmp_path_factory, tokenizer_path):
    """mbpp.jsonl built with --split all, test and train, into one data root (each build runs the
    quality gate, so the other two splits are counted through the same records() filter below)."""
    root = tmp_path_factory.mktemp("mbpp")
    src = shared("mbpp", "mbpp.jsonl")
    versions = {}
    for split in ("train", "test", "all"):  # train first: later eval versions would decontaminate it
        assert build(root, tokenizer_path, "mbpp", "--from", str(src), "--split", split) == 0
        versions[split] = latest(root)
    return root, versions


def test_each_split_has_its_published_size_and_all_has_974(full):
    root, versions = full
    for split in ("test", "train"):
        v, size = versions[split], SIZES[split]
        assert (v["rows"], v["quarantined"], v["status"]) == (size, 0, "published"), split
        assert {r["meta"]["split"] for r in rows_of(root, v["id"])} == {split}
    everything = rows_of(root, versions["all"]["id"])
    assert len(everything) == 974 and len({r["id"] for r in everything}) == 974
    assert Counter(r["meta"]["split"] for r in everything) == SIZES
    assert sorted(r["meta"]["task_id"] for r in everything) == list(range(1, 975))
    source = MBPP(argparse.Namespace(split="train", sanitized=False))
    src = str(shared("mbpp", "mbpp.jsonl"))
    assert {s: len(list(source.records([src], s, None))) for s in SIZES} == SIZES


def test_test_and_prompt_splits_are_registered_as_evaluation_data(full):
    _, versions = full
    assert {split: v["kind"] for split, v in versions.items()} == {"train": "train", "test": "eval", "all": "eval"}
    source = MBPP(argparse.Namespace(split="train", sanitized=False))
    assert [source.is_eval_split(s) for s in ("prompt", "validation", "val")] == [True, False, False]


def test_prompt_holds_description_and_tests_target_the_code(full):
    root, versions = full
    rows = {r["meta"]["task_id"]: r for r in rows_of(root, versions["all"]["id"])}
    raw = {r["task_id"]: r for r in map(json.loads, shared("mbpp", "mbpp.jsonl").read_text().splitlines())}
    for task_id in (1, 11, 511, 601, 974):
        row, rec = rows[task_id], raw[task_id]
        assert rec["text"] in row["prompt"]
        assert all(test.strip() in row["prompt"] for test in rec["test_list"])
        assert row["target"] == rec["code"].replace("\r\n", "\n").rstrip()
        assert "\r" not in row["target"]
        assert row["meta"]["test_list"] == rec["test_list"]
        assert row["meta"]["challenge_test_list"] == rec["challenge_test_list"]
        assert row["id"] == f"mbpp:{task_id}"
    assert rows[1]["meta"]["entry_point"] == "min_cost"


def test_stored_code_passes_its_stored_tests(full):
    """What meta keeps is enough for execution-based evaluation."""
    root, versions = full
    rows = [r for r in rows_of(root, versions["all"]["id"]) if r["meta"]["split"] == "validation"]
    rows = sorted(rows, key=lambda r: r["meta"]["task_id"])[:25]
    program = "results = {}\n"
    for row in rows:
        m = row["meta"]
        body = "\n".join([m["test_setup_code"], row["target"], *m["test_list"]])
        program += f"try:\n    exec({body!r}, {{}})\n    results[{m['task_id']}] = True\n"
        program += f"except Exception:\n    results[{m['task_id']}] = False\n"
    program += "import json; print(json.dumps(results))"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    results = json.loads(out.stdout)
    assert len(results) == 25 and all(results.values()), results


def test_tier_follows_code_lines(full):
    root, versions = full
    rows = rows_of(root, versions["all"]["id"])
    for row in rows:
        lines = row["features"]["code_lines"]
        assert row["tier"] == (lines >= 4) + (lines >= 7) + (lines >= 12)
        assert lines == sum(1 for line in row["target"].splitlines() if line.strip())
        assert row["features"]["tests"] == len(row["meta"]["test_list"]) == 3
    by_tier = Counter(r["tier"] for r in rows)
    assert set(by_tier) == {0, 1, 2, 3} and max(by_tier.values()) < 0.5 * len(rows)
    registered = Catalog(root).query("SELECT sum(rows) FROM tiers WHERE version = ? AND rule = 'mbpp-code-lines@v1'",
                                     [versions["all"]["id"]])[0][0]
    assert registered == 974


def test_sanitized_json_has_427_problems_in_the_same_ranges(tmp_path, tokenizer_path):
    src = shared("mbpp", "sanitized-mbpp.json")
    assert build(tmp_path, tokenizer_path, "mbpp", "--from", str(src), "--split", "all") == 0
    v = latest(tmp_path)
    rows = rows_of(tmp_path, v["id"])
    assert (v["rows"], v["quarantined"]) == (427, 0)
    assert {r["meta"]["layout"] for r in rows} == {"sanitized"}
    split_sizes = Counter(r["meta"]["split"] for r in rows)
    assert split_sizes == {"test": 257, "train": 120, "validation": 43, "prompt": 7}
    raw = {r["task_id"]: r for r in json.loads(src.read_text())}
    row = next(r for r in rows if r["meta"]["task_id"] == 2)
    assert raw[2]["prompt"] in row["prompt"] and row["target"] == raw[2]["code"].rstrip()


# -- bad input ------------------------------------------------------------------------------------

GOOD = {"text": "Write a function to add two numbers.", "code": "def add(a, b):\r\n  return a + b",
        "test_setup_code": "", "challenge_test_list": [],
        "test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0", "assert add(-1, 1) == 0"]}


def _records():
    """Distinct problems (the quality gate refuses a version of repeated rows)."""
    return [{**GOOD, "task_id": 601 + i, "text": f"Write a function to add {i} to the sum of two numbers.",
             "code": f"def add(a, b):\r\n  return a + b + {i}",
             "test_list": [f"assert add(1, 2) == {3 + i}", f"assert add(0, 0) == {i}"]} for i in range(40)]


def test_bad_records_are_quarantined_naming_line_and_field(tmp_path, tokenizer_path):
    recs = _records()
    del recs[1]["text"]                                  # missing description
    recs[2]["task_id"] = "603"                           # wrong type
    recs[3]["test_list"] = "assert add(1, 2) == 3"        # not a list
    recs[4]["test_list"] = ["assert add(1, 2) == 3", 7]   # element of the wrong type
    recs[5]["code"] = "   "                               # empty target
    recs[6]["task_id"] = 975                             # outside the published ranges
    recs[7]["test_setup_code"] = ["import math"]          # wrong type
    recs[8]["test_list"] = []                             # no tests
    recs[9]["task_id"] = True                            # bool is not a task id
    lines = [json.dumps(r) for r in recs]
    lines[10] = '{"text": "broken'                        # malformed JSON
    lines[11] = "[601, 602]"                              # not an object
    src = tmp_path / "mbpp.jsonl"
    src.write_text("\n".join(lines) + "\n")
    assert build(tmp_path / "data", tokenizer_path, "mbpp", "--from", str(src), "--max-bad-ratio", "0.5") == 0
    v = latest(tmp_path / "data")
    # a malformed line makes the whole file read line by line: refs are file:line (1-based)
    found = {(q["ref"], q["field"]): q["reason"] for q in quarantine(tmp_path / "data", v["id"])}
    assert found == {
        (f"{src}:2", "text"): "missing field 'text'",
        (f"{src}:3", "task_id"): "expected int, got str",
        (f"{src}:4", "test_list"): "expected list, got str",
        (f"{src}:5", "test_list[1]"): "expected text, got int",
        (f"{src}:6", "code"): "empty text",
        (f"{src}:7", "task_id"): "task_id 975 is outside the published ranges 1-974",
        (f"{src}:8", "test_setup_code"): "expected text, got list",
        (f"{src}:9", "test_list"): "empty list",
        (f"{src}:10", "task_id"): "expected int, got bool",
        (f"{src}:11", None): "malformed JSON: unexpected control character in string",
        (f"{src}:12", None): "expected a JSON object, got list",
    }
    assert v["rows"] == 29 and v["quarantined"] == 11


def test_empty_file_and_unknown_split_are_one_line_errors(tmp_path, tokenizer_path, capsys):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert build(tmp_path / "data", tokenizer_path, "mbpp", "--from", str(empty)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no records read from") and str(empty) in err and err.count("\n") == 1
    src = write_jsonl(tmp_path / "ok.jsonl", _records())
    assert build(tmp_path / "data", tokenizer_path, "mbpp", "--from", str(src), "--split", "dev") == 2
    assert capsys.readouterr().err.strip() == (
        "error: mbpp has no split 'dev': use one of prompt, test, validation, train, all")
    assert Catalog(tmp_path / "data").query("SELECT count(*) FROM versions")[0][0] == 0


def test_split_filter_reads_only_the_requested_range():
    src = shared("mbpp", "mbpp.jsonl")
    source = MBPP(argparse.Namespace(split="val", sanitized=False))
    ids = [r.data["task_id"] for r in source.records([str(src)], "val", None)]
    assert ids == list(range(511, 601))
    assert source.is_eval_split("test") and source.is_eval_split("all") and not source.is_eval_split("train")
