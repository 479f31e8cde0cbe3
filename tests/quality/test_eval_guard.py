"""No test set in training by accident: eval splits register as eval, training builds of an eval
split are refused unless forced, the quality check names a content registered both ways, and
ScienceQA decontamination keys on the problem, not its lecture (real builds, real shared data)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.quality.__main__ import main as quality_main
from corpus.quality.eval_guard import named_as_test_split
from tests.quality.conftest import build, shared_path, write_jsonl


def versions(root: Path) -> list[dict]:
    return Catalog(root).query_dicts("SELECT id, source, kind, rows, status FROM versions ORDER BY created_at")


def shard_names(root: Path, vid: str) -> list[str]:
    return [Path(s["path"]).name for s in Catalog(root).shards(vid)]


def test_test_split_names():
    assert [named_as_test_split(Path(n)) for n in ("test.jsonl", "gsm8k_test.jsonl", "test-00000-of-00001.parquet",
                                                   "train_sample.jsonl", "latest.txt", "contest.jsonl")] == \
           [True, True, True, False, False, False]


def test_tour_mistake_is_refused_then_forced_then_named_by_the_check(tmp_path, tokenizer_path, capsys):
    test = shared_path("gsm8k", "test.jsonl")
    root = tmp_path / "data"
    # the README's old first step: GSM8K's test file with the default --split train
    assert build(root, tokenizer_path, "gsm8k", "--from", str(test)) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith(f"error: {test} is named as a test split")
    assert "python -m corpus.build gsm8k --split test" in err and "--allow-eval-data" in err
    assert not (root / "catalog.duckdb").exists() or not versions(root)
    # forced: registered as training data, and told it was checked against nothing of GSM8K
    assert build(root, tokenizer_path, "gsm8k", "--from", str(test), "--allow-eval-data") == 0
    out = capsys.readouterr().out
    assert "not decontaminated: no evaluation set of gsm8k is registered" in out
    # the evaluation build of the same file: kind eval without --role, one split named as registered
    assert build(root, tokenizer_path, "gsm8k", "--from", str(test), "--split", "test") == 0
    train, ev = versions(root)
    assert (train["kind"], ev["kind"], train["rows"], ev["rows"]) == ("train", "eval", 1319, 1319)
    assert all(n.startswith("test-") for n in shard_names(root, ev["id"]))
    assert {s["split"] for s in Catalog(root).shards(ev["id"])} == {"test"}
    # Hugging Face's split inference, polars and DuckDB see every row once, under "test"
    import datasets
    import duckdb
    import polars

    folder = root / Path(Catalog(root).shards(ev["id"])[0]["path"]).parent
    loaded = datasets.load_dataset("parquet", data_dir=str(folder))
    assert {split: len(rows) for split, rows in loaded.items()} == {"test": 1319}
    assert len(set(loaded["test"]["id"])) == 1319 and set(loaded["test"]["split"]) == {"test"}
    frame = polars.read_parquet(folder / "*.parquet")
    assert frame.height == frame["id"].n_unique() == 1319 and frame["split"].unique().to_list() == ["test"]
    glob = str(folder / "*.parquet").replace("'", "''")
    assert duckdb.connect().execute(f"SELECT count(*), count(DISTINCT id), min(split), max(split) "
                                    f"FROM read_parquet('{glob}')").fetchall() == [(1319, 1319, "test", "test")]
    assert all(n.startswith(("train-", "val-")) for n in shard_names(root, train["id"]))
    capsys.readouterr()
    assert quality_main(["check", "--data-dir", str(root)]) == 1
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("failed: "))
    assert f"gsm8k {train['id']} (training) and gsm8k {ev['id']} (evaluation) share 1,319 rows" in line
    # the quality report says the forced version was not decontaminated
    from corpus.quality.report import select_versions, summary_markdown

    markdown, ok = summary_markdown(Catalog(root), root, select_versions(Catalog(root)), None)
    row = next(ln for ln in markdown.splitlines() if f"`{train['id']}`" in ln and ln.startswith("|"))
    assert "not decontaminated" in row


def test_files_registered_as_eval_are_refused_for_any_source(tmp_path, tokenizer_path, capsys):
    root = tmp_path / "data"
    src = write_jsonl(tmp_path / "bench" / "items.jsonl",
                      [json.loads(line) for line in shared_path("gsm8k", "test.jsonl").read_text().splitlines()[:50]])
    assert build(root, tokenizer_path, "gsm8k", "--from", str(src), "--role", "eval") == 0
    capsys.readouterr()
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), "--prompt-field", "question",
                 "--target-field", "answer") == 2
    err = capsys.readouterr().err.strip()
    ev = versions(root)[0]["id"]
    assert "\n" not in err and f"is registered as evaluation data (gsm8k {ev})" in err and "--role eval" in err
    # the same file's other split of the same source is not the eval data (MBPP keeps all splits in one file)
    mbpp = shared_path("mbpp", "mbpp.jsonl")
    assert build(root, tokenizer_path, "mbpp", "--from", str(mbpp), "--split", "prompt") == 0
    assert build(root, tokenizer_path, "mbpp", "--from", str(mbpp), "--split", "validation") == 0
    kinds = [(v["source"], v["kind"], v["rows"]) for v in versions(root)]
    assert kinds[1][:2] == ("mbpp", "eval") and kinds[2] == ("mbpp", "train", 90)


@pytest.fixture(scope="module")
def scienceqa_root(tmp_path_factory, tokenizer_path) -> Path:
    root = tmp_path_factory.mktemp("sqa")
    assert build(root, tokenizer_path, "science_qa", "--from", str(shared_path("scienceqa")), "--split", "test") == 0
    return root


def _problems(src: Path) -> tuple[dict, dict]:
    """The subset's problems and its split lists restricted to them (the full lists name 21k pids)."""
    problems = json.loads((src / "problems.json").read_text())
    splits = json.loads((src / "pid_splits.json").read_text())
    return problems, {k: [p for p in v if p in problems] for k, v in splits.items()}


def test_scienceqa_shared_lectures_are_not_contamination(scienceqa_root, tmp_path, tokenizer_path):
    root = tmp_path / "data"
    shutil.copytree(scienceqa_root, root)
    src = shared_path("scienceqa")
    problems, splits = _problems(src)
    test_lectures = {problems[p]["lecture"] for p in splits["test"] if problems[p].get("lecture")}
    sharing = [p for p in splits["train"] if problems[p].get("lecture") in test_lectures]
    assert len(sharing) >= 20  # the boilerplate that used to drop 22 of 50
    assert build(root, tokenizer_path, "science_qa", "--from", str(src), "--split", "train", "--val-ratio", "0") == 0
    train = next(v for v in versions(root) if v["kind"] == "train")
    hits = Catalog(root).query_dicts("SELECT row_id, item FROM decontamination WHERE version = ?", [train["id"]])
    dropped = {h["row_id"].split(":", 1)[1] for h in hits}
    # nothing is dropped for its lecture: a dropped problem shares its own question or solution text
    for h in hits:
        mine, theirs = problems[h["row_id"].split(":", 1)[1]], problems[h["item"].split(":", 1)[1]]
        assert mine["solution"] == theirs["solution"] or mine["question"] == theirs["question"], h
    assert len(dropped) <= 1 and train["rows"] == 50 - len(dropped)


def test_scienceqa_injected_test_problem_is_still_dropped(scienceqa_root, tmp_path, tokenizer_path):
    root = tmp_path / "data"
    shutil.copytree(scienceqa_root, root)
    src = shared_path("scienceqa")
    problems, splits = _problems(src)
    injected = next(p for p in splits["test"] if problems[p].get("lecture") and len(problems[p]["question"]) > 40)
    mine = tmp_path / "sqa"
    shutil.copytree(src, mine, ignore=shutil.ignore_patterns("images"))
    (mine / "images").symlink_to(src / "images")
    copy = dict(problems[injected], split="train")
    problems["999999"] = copy
    splits["train"] = splits["train"] + ["999999"]
    (mine / "problems.json").write_text(json.dumps(problems))
    (mine / "pid_splits.json").write_text(json.dumps(splits))
    assert build(root, tokenizer_path, "science_qa", "--from", str(mine), "--split", "train", "--val-ratio", "0") == 0
    train = next(v for v in versions(root) if v["kind"] == "train")
    hits = {h["row_id"]: h["item"] for h in Catalog(root).query_dicts(
        "SELECT row_id, item FROM decontamination WHERE version = ?", [train["id"]])}
    assert hits.get("science_qa:999999") == f"science_qa:{injected}"
    ids = {i for s in Catalog(root).shards(train["id"]) for i in pq.read_table(root / s["path"], columns=["id"])
           .column("id").to_pylist()}
    assert "science_qa:999999" not in ids
