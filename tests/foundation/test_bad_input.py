"""Bad input: records are quarantined with file, line and reason; bad builds register nothing."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from corpus.build import main as build_main
from corpus.catalog import Catalog
from tests.foundation.helpers import run_cli, write_jsonl

GOOD = [{"question": f"Tom has {i} apples and buys {i + 1} more. How many now?",
         "answer": f"Tom has {i} + {i + 1} = {2 * i + 1} apples.\n#### {2 * i + 1}"} for i in range(200)]


def _build(tmp_path, tokenizer_path, src, *extra, source="gsm8k"):
    return build_main([source, "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir",
                       str(tmp_path / "data"), "--quiet", *extra])


def _quarantine(tmp_path):
    return Catalog(tmp_path / "data").query_dicts("SELECT ref, field, reason FROM quarantine ORDER BY ref")


def test_each_bad_record_is_quarantined_with_line_and_reason(tmp_path, tokenizer_path):
    src = tmp_path / "mixed.jsonl"
    lines = [json.dumps(r) for r in GOOD]
    lines[10] = '{"question": "broken", "answer": '                          # malformed JSON
    lines[20] = json.dumps({"answer": "x\n#### 1"})                           # missing field
    lines[30] = json.dumps({"question": 42, "answer": "x\n#### 1"})           # mistyped field
    lines[40] = json.dumps({"question": "What?", "answer": "   "})            # empty target
    lines[50] = json.dumps({"question": "Long " * 2000, "answer": "a\n#### 1"})  # overlong
    src.write_text("\n".join(lines) + "\n")
    with open(src, "ab") as f:
        f.write(b'{"question": "bad \xff byte", "answer": "x\\n#### 1"}\n')  # invalid UTF-8, line 201
    assert _build(tmp_path, tokenizer_path, src, "--max-bad-ratio", "0.05") == 0
    found = {(q["ref"].rsplit(":", 1)[1], q["field"]): q["reason"] for q in _quarantine(tmp_path)}
    assert found.keys() == {("11", None), ("21", "question"), ("31", "question"), ("41", "answer"), ("51", None),
                            ("201", None)}
    assert found[("11", None)].startswith("malformed JSON")
    assert found[("21", "question")] == "missing field 'question'"
    assert found[("31", "question")] == "expected text, got int"
    assert found[("41", "answer")] == "empty text"
    assert found[("51", None)].startswith("overlong:")
    assert found[("201", None)].startswith("invalid UTF-8")
    assert all(q["ref"].startswith(str(src)) for q in _quarantine(tmp_path))
    (rows, quarantined), = Catalog(tmp_path / "data").query("SELECT rows, quarantined FROM versions")
    assert (rows, quarantined) == (195, 6)
    qfile = next((tmp_path / "data" / "quarantine").rglob("*.parquet"))
    assert pq.read_table(qfile).num_rows == 6


def test_overlong_truncate_policy_keeps_the_row_consistent(tmp_path, tokenizer_path):
    from tokenizers import Tokenizer

    src = write_jsonl(tmp_path / "long.jsonl", GOOD[:5] + [{"question": "Long question " * 300, "answer": "a\n#### 1"}])
    assert _build(tmp_path, tokenizer_path, src, "--overlong", "truncate", "--max-seq-len", "128",
                  "--val-ratio", "0", "--max-bad-ratio", "0") == 0
    tok = Tokenizer.from_file(str(tokenizer_path))
    rows = pq.read_table(next((tmp_path / "data").rglob("train-*.parquet"))).to_pylist()
    long = [r for r in rows if json.loads(r["meta"]).get("truncated_from")]
    assert len(rows) == 6 and len(long) == 1 and long[0]["n_tokens"] == 128
    assert tok.decode(long[0]["prompt_ids"], skip_special_tokens=True) == long[0]["prompt"]


def test_too_many_bad_records_fail_and_register_nothing(tmp_path, tokenizer_path):
    src = tmp_path / "bad.jsonl"
    src.write_text("\n".join([json.dumps(r) for r in GOOD[:90]] + ["{not json"] * 10) + "\n")
    proc = run_cli("corpus.build", "gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path),
                   "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "10 of 100 records bad" in err and f"{src}:91" in err
    assert Catalog(tmp_path / "data").query("SELECT count(*) FROM versions")[0][0] == 0
    assert not list((tmp_path / "data").glob("shards/**/*.parquet"))
    assert not list((tmp_path / "data").glob("quarantine/**/*.parquet"))


@pytest.mark.parametrize("case", ["missing input", "unreadable tokenizer", "unknown source", "missing tokenizer"])
def test_user_errors_are_one_line_exit_2(tmp_path, tokenizer_path, case):
    src = write_jsonl(tmp_path / "ok.jsonl", GOOD[:3])
    bad_tok = tmp_path / "tok.json"
    bad_tok.write_text("{ this is not a tokenizer")
    args = {
        "missing input": ["gsm8k", "--from", str(tmp_path / "nope.jsonl"), "--tokenizer", str(tokenizer_path)],
        "unreadable tokenizer": ["gsm8k", "--from", str(src), "--tokenizer", str(bad_tok)],
        "unknown source": ["nosuchsource", "--from", str(src), "--tokenizer", str(tokenizer_path)],
        "missing tokenizer": ["gsm8k", "--from", str(src), "--tokenizer", str(tmp_path / "absent.json")],
    }[case]
    proc = run_cli("corpus.build", *args, "--data-dir", str(tmp_path / "data"))
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    expected = {"missing input": "nope.jsonl", "unreadable tokenizer": "tok.json",
                "unknown source": "nosuchsource", "missing tokenizer": "absent.json"}[case]
    assert expected in err


def test_empty_file_is_an_error_not_an_empty_version(tmp_path, tokenizer_path, capsys):
    src = tmp_path / "empty.jsonl"
    src.write_text("")
    assert _build(tmp_path, tokenizer_path, src) == 2
    assert "no records" in capsys.readouterr().err


def test_offline_hub_miss_suggests_from(tmp_path, tokenizer_path):
    proc = run_cli("corpus.build", "gsm8k", "--tokenizer", str(tokenizer_path), "--data-dir", str(tmp_path / "d"),
                   env={"HF_HUB_OFFLINE": "1"}, timeout=60)
    assert proc.returncode == 2
    assert "--from" in proc.stderr and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1


def test_changed_input_gives_new_version_id(tmp_path, tokenizer_path):
    src = write_jsonl(tmp_path / "a.jsonl", GOOD[:50])
    assert _build(tmp_path, tokenizer_path, src) == 0
    write_jsonl(src, GOOD[:51])
    assert _build(tmp_path, tokenizer_path, src) == 0
    assert _build(tmp_path, tokenizer_path, src, "--strip-calculator") == 0
    ids = Catalog(tmp_path / "data").query("SELECT id FROM versions")
    assert len({i for (i,) in ids}) == 3


def test_generic_jsonl_with_dotted_paths(tmp_path, tokenizer_path):
    recs = [{"uid": f"q{i}", "data": {"question": f"Who is number {i}?", "answers": {"text": [f"Number {i}", "x"]}}}
            for i in range(20)]
    recs.append({"uid": "bad", "data": {"question": "No answers", "answers": {"text": []}}})
    src = write_jsonl(tmp_path / "qa.jsonl", recs)
    assert _build(tmp_path, tokenizer_path, src, "--prompt-field", "data.question", "--target-field",
                  "data.answers.text[0]", "--id-field", "uid", "--val-ratio", "0", "--max-bad-ratio", "0.1",
                  source="jsonl") == 0
    rows = pq.read_table(next((tmp_path / "data").rglob("train-*.parquet"))).to_pylist()
    assert {r["id"] for r in rows} == {f"jsonl:q{i}" for i in range(20)}
    assert {r["target"] for r in rows} == {f"Number {i}" for i in range(20)}
    (q,) = _quarantine(tmp_path)
    assert q["field"] == "data.answers.text[0]" and "out of range" in q["reason"]


def test_parquet_input_and_workers_give_identical_shards(tmp_path, tokenizer_path):
    import pyarrow as pa

    src = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pylist([{"prompt": r["question"], "completion": r["answer"]} for r in GOOD]), src)
    common = ["--target-field", "completion", "--batch-size", "32", "--val-ratio", "0.2"]
    assert build_main(["parquet", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir",
                       str(tmp_path / "one"), "--quiet", *common]) == 0
    assert build_main(["parquet", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir",
                       str(tmp_path / "two"), "--quiet", "--workers", "2", *common]) == 0
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("shards/**/*.*") if p.is_file())
    assert one and all((tmp_path / "one" / p).read_bytes() == (tmp_path / "two" / p).read_bytes() for p in one)


def test_generic_records_under_their_own_source_name(tmp_path, tokenizer_path):
    """``jsonl --name squad``: registered, stored and mixed as ``squad``; a built-in name is refused."""
    recs = [{"uid": f"q{i}", "q": f"Who is number {i} in the queue today?", "a": f"Number {i} is Ann."}
            for i in range(40)]
    src = write_jsonl(tmp_path / "squad.jsonl", recs)
    flags = ("--prompt-field", "q", "--target-field", "a", "--id-field", "uid", "--val-ratio", "0.1")
    assert _build(tmp_path, tokenizer_path, src, *flags, "--name", "squad", source="jsonl") == 0
    cat = Catalog(tmp_path / "data")
    (vid, source, status), = cat.query("SELECT id, source, status FROM versions")
    assert source == "squad" and status == "published"
    rows = pq.read_table(next((tmp_path / "data" / "shards" / "squad" / vid).glob("train-*.parquet"))).to_pylist()
    assert {r["source"] for r in rows} == {"squad"} and all(r["id"].startswith("squad:q") for r in rows)
    sha = cat.query("SELECT tokenizer_sha FROM versions")[0][0]
    import corpus

    plan = corpus.plan({"run": {"name": "named"}, "data": {"tokenizer": f"tokenizers/{sha}.json", "max_seq_len": 512,
                                                           "train_samples": 50, "val_samples": 4,
                                                           "sources": [{"name": "squad", "weight": 1.0}]}},
                       data_dir=tmp_path / "data", build_missing=False)
    assert [c["source"] for c in plan.sources] == ["squad"] and plan.sources[0]["version"] == vid
    for bad, why in (("gsm8k", "is a built-in source"), ("Has Space", "use 1-64 lowercase")):
        proc = run_cli("corpus.build", "jsonl", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir",
                       str(tmp_path / "data"), *flags, "--name", bad)
        assert proc.returncode == 2 and why in proc.stderr and "Traceback" not in proc.stderr
