"""HumanEval: 164 evaluation problems, solutions that pass their stored tests, tiers, bad input."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from corpus.catalog import Catalog
from tests.conftest import shared
from tests.sources.helpers import build, latest, quarantine, rows_of, write_jsonl


@pytest.fixture(scope="module")
def built(tmp_path_factory, tokenizer_path):
    root = tmp_path_factory.mktemp("humaneval")
    assert build(root, tokenizer_path, "humaneval", "--from", str(shared("humaneval", "HumanEval.jsonl.gz"))) == 0
    version = latest(root)
    return root, version, rows_of(root, version["id"])


def test_all_164_problems_registered_as_evaluation_data(built):
    _, version, rows = built
    facts = (version["rows"], version["quarantined"], version["status"], version["kind"])
    assert facts == (164, 0, "published", "eval")
    assert sorted(int(r["id"].split("/")[-1]) for r in rows) == list(range(164))
    assert {r["meta"]["split"] for r in rows} == {"test"}
    # built without --split, it is registered under its one split: rows, config and file names say test
    assert {r["split"] for r in rows} == {"test"}
    assert json.loads(version["config"])["split"] == "test"
    shards = Catalog(built[0]).shards(version["id"])
    assert [(s["split"], Path(s["path"]).name) for s in shards] == [("test", "test-00000.parquet")]


def test_prompt_and_target_are_the_published_text(built):
    _, _, rows = built
    with gzip.open(shared("humaneval", "HumanEval.jsonl.gz"), "rt") as f:
        raw = {r["task_id"]: r for r in map(json.loads, f)}
    for row in rows:
        rec = raw[row["meta"]["task_id"]]
        assert row["prompt"] == rec["prompt"] and row["target"] == rec["canonical_solution"]
        assert row["meta"]["test"] == rec["test"] and row["meta"]["entry_point"] == rec["entry_point"]


def test_canonical_solutions_pass_the_stored_tests(built):
    """prompt + target + meta.test + check(entry_point) is a complete evaluation."""
    _, _, rows = built
    sample = sorted(rows, key=lambda r: int(r["id"].split("/")[-1]))[::8]
    program = "import json\nok = {}\n"
    for row in sample:
        m = row["meta"]
        code = row["prompt"] + row["target"] + "\n" + m["test"] + f"\ncheck({m['entry_point']})\n"
        key = row["id"]
        program += f"try:\n    exec({code!r}, {{}})\n    ok[{key!r}] = True\n"
        program += f"except Exception:\n    ok[{key!r}] = False\n"
    program += "print(json.dumps(ok))"
    out = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    ok = json.loads(out.stdout)
    assert len(ok) == len(sample) >= 20 and all(ok.values()), ok


def test_tier_follows_solution_lines(built):
    root, version, rows = built
    for row in rows:
        lines = row["features"]["solution_lines"]
        assert row["tier"] == (lines >= 3) + (lines >= 6) + (lines >= 10)
    tiers = Counter(r["tier"] for r in rows)
    assert set(tiers) == {0, 1, 2, 3}
    hist = dict(Catalog(root).query("SELECT tier, rows FROM tiers WHERE version = ? AND rule = ?",
                                    [version["id"], "humaneval-solution-lines@v1"]))
    assert hist == dict(tiers)


GOOD = {"prompt": "def add(a, b):\n    \"\"\"Add.\n    >>> add(1, 2)\n    3\n    \"\"\"\n",
        "canonical_solution": "    return a + b\n", "entry_point": "add",
        "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n"}


def test_bad_records_are_quarantined_naming_the_field(tmp_path, tokenizer_path):
    recs = [{**GOOD, "task_id": f"X/{i}", "prompt": GOOD["prompt"].replace("Add.", f"Add, variant {i}.")}
            for i in range(30)]  # distinct: the quality gate refuses repeated rows
    del recs[1]["entry_point"]
    recs[2]["prompt"] = 42
    recs[3]["entry_point"] = "not an identifier"
    recs[4]["entry_point"] = "sub"
    recs[5]["test"] = "assert True"
    recs[6]["canonical_solution"] = ""
    src = write_jsonl(tmp_path / "HumanEval.jsonl", recs)
    assert build(tmp_path / "data", tokenizer_path, "humaneval", "--from", str(src), "--max-bad-ratio", "0.5") == 0
    v = latest(tmp_path / "data")
    found = {(q["ref"].rsplit(":", 1)[1], q["field"]): q["reason"] for q in quarantine(tmp_path / "data", v["id"])}
    assert found == {  # refs are file:line (line = record index + 1)
        ("2", "entry_point"): "missing field 'entry_point'",
        ("3", "prompt"): "expected text, got int",
        ("4", "entry_point"): "'not an identifier' is not a Python identifier",
        ("5", "entry_point"): "prompt does not define sub()",
        ("6", "test"): "no check(candidate) function",
        ("7", "canonical_solution"): "empty text",
    }
    assert v["rows"] == 24


def test_empty_file_and_other_splits_are_one_line_errors(tmp_path, tokenizer_path, capsys):
    empty = tmp_path / "HumanEval.jsonl"
    empty.write_text("")
    assert build(tmp_path / "data", tokenizer_path, "humaneval", "--from", str(empty)) == 2
    assert capsys.readouterr().err.startswith("error: no records read from")
    src = write_jsonl(tmp_path / "h.jsonl", [{**GOOD, "task_id": "X/0"}])
    assert build(tmp_path / "data", tokenizer_path, "humaneval", "--from", str(src), "--split", "validation") == 2
    err = capsys.readouterr().err.strip()
    assert err == "error: humaneval has one split (test): --split 'validation' is not available"
