"""The blueprint's own settings on the real shared data: a tokenizer trained by ``corpus.tokenizer
train`` on WikiText-2 valid at vocab 8,192 and the default ``--max-seq-len 512``. No build fails or
quarantines for length, and stage B is planned at 512 and at 1024 over the same versions, the
``mix_overlong`` view counting per source exactly the rows the shards hold above each length."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from corpus.build import main as build_main
from corpus.catalog import Catalog
from tests.conftest import REPO, shared

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

SYNTHETIC = ("arith", "counting", "derivations", "linear", "lists", "word_problems")


@pytest.fixture(scope="module")
def tokenizer(tmp_path_factory) -> Path:
    from corpus.tokenizer import main as tokenizer_main

    out = tmp_path_factory.mktemp("tok") / "hrm.json"
    assert tokenizer_main(["train", "--from", str(shared("wikitext2", "valid.txt")), "--vocab-size", "8192",
                           "--out", str(out), "--data-dir", str(out.parent / "data")]) == 0
    return out


@pytest.fixture(scope="module")
def root(tmp_path_factory, tokenizer) -> Path:
    """Every stage B input and the benchmark sources, built with default flags."""
    root = tmp_path_factory.mktemp("blueprint")
    common = ["--tokenizer", str(tokenizer), "--data-dir", str(root), "--quiet", "--threads", "1"]
    mbpp = str(shared("mbpp", "mbpp.jsonl"))
    builds = [["mbpp", "--from", mbpp, "--split", split] for split in ("train", "validation", "test", "prompt")]
    builds += [["humaneval", "--from", str(shared("humaneval", "HumanEval.jsonl.gz"))],
               ["science_qa", "--from", str(shared("scienceqa")), "--split", "all"],
               ["gsm8k", "--from", str(shared("gsm8k", "train_sample.jsonl"))],
               ["wiki", "--from", str(shared("wikitext2", "valid.txt"))]]
    for argv in builds:
        assert build_main(argv + common) == 0, argv
    return root


def registered(root: Path) -> list[tuple]:
    return Catalog(root).query("SELECT source, json_extract_string(config, '$.split'), kind, rows, quarantined, "
                               "status FROM versions ORDER BY created_at")


def test_no_build_fails_or_quarantines_for_length(root):
    got = registered(root)
    assert [(s, sp, k, n) for s, sp, k, n, _, _ in got] == [
        ("mbpp", "train", "train", 374), ("mbpp", "validation", "train", 90), ("mbpp", "test", "eval", 500),
        ("mbpp", "prompt", "eval", 10), ("humaneval", "test", "eval", 164), ("science_qa", "all", "eval", 100),
        ("gsm8k", "train", "train", 1000), ("wiki", "train", "train", got[-1][3])]
    assert all(q == 0 and status == "published" for *_, q, status in got)
    longest = dict(Catalog(root).query("SELECT source, max(max_seq_len) FROM versions GROUP BY 1"))
    assert longest["wiki"] == 512 and longest["mbpp"] > 512 and longest["gsm8k"] > 512  # whole examples


@pytest.mark.parametrize("task", SYNTHETIC)
def test_synthetic_task_at_2000_keeps_every_generated_item(tokenizer, task):
    """The build's own worker steps (normalize, encode, rows) at the default settings: every one of
    2,000 generated items becomes a row, none is rejected (the quality gate is tested elsewhere)."""
    from corpus import build
    from corpus.build import parse_args

    args = parse_args([f"synthetic:{task}", "--count", "2000", "--tokenizer", str(tokenizer)])
    assert args.max_seq_len == 512
    build._init_worker(args, str(tokenizer), 1)
    source = build._WORKER["source"]
    records = list(source.records(None, args.split, None))
    by_split, rejected, n_records, *_ = build._process(records)  # then counters, worker phase times
    assert n_records == 2000 and rejected == []
    lengths = [n for batch in by_split.values() for n in batch.n_tokens.tolist()]
    assert len(lengths) == 2000 and min(lengths) > 0


def stage_b(tmp: Path, root: Path, tokenizer: Path, max_seq_len: int) -> Path:
    """manifests/stageB.toml as shipped but for its length and sizes (5M positions do not fit a unit test)."""
    (root / "tokenizers").mkdir(exist_ok=True)
    shutil.copyfile(tokenizer, root / "tokenizers" / "hrm.json")
    text = (REPO / "manifests" / "stageB.toml").read_text()
    for key, value in (("max_seq_len", max_seq_len), ("train_samples", 60000), ("val_samples", 2000)):
        lines = text.splitlines()
        i = next(i for i, ln in enumerate(lines) if ln.startswith(f"{key} = "))  # the [data] one comes first
        lines[i] = f"{key} = {value}"
        text = "\n".join(lines) + "\n"
    # the versions built above, resolved as "latest" (a build table would declare other ones: the hub's)
    text = "\n".join(ln for ln in text.splitlines() if not ln.startswith("build = ")) + "\n"
    if max_seq_len != 512:  # wiki's windows are cut at 512: not "latest" for another length, so pinned
        wiki = Catalog(root).query("SELECT id FROM versions WHERE source = 'wiki'")[0][0]
        text = text.replace('name = "wiki"\n', f'name = "wiki"\nversion = "{wiki}"\nmax_target_loss = 1.0\n', 1)
    path = tmp / f"stageB-{max_seq_len}.toml"
    path.write_text(text)
    return path


def rows_longer(root: Path, version: str, split: str, limit: int) -> int:
    return sum(sum(n > limit for n in pq.read_table(root / s["path"], columns=["n_tokens"]).column("n_tokens")
                   .to_pylist()) for s in Catalog(root).shards(version, split))


def test_stage_b_at_512_and_1024_over_the_same_versions(root, tokenizer, tmp_path, capsys):
    from corpus.mix import main as mix_main

    before = registered(root)
    plans = {}
    for limit in (512, 1024):
        assert mix_main([str(stage_b(tmp_path, root, tokenizer, limit)), "--data-dir", str(root), "--json",
                         "--no-build"]) == 0
        plans[limit] = json.loads(capsys.readouterr().out)
    assert registered(root) == before  # no rebuild
    assert plans[512]["plan"] != plans[1024]["plan"]
    assert [s["version"] for s in plans[512]["sources"]] == [s["version"] for s in plans[1024]["sources"]]
    view = Catalog(root).query_dicts("SELECT * FROM mix_overlong WHERE plan IN (?, ?) ORDER BY max_seq_len, source, "
                                     "split", [plans[512]["plan"], plans[1024]["plan"]])
    assert len(view) == 2 * 3 * 2  # lengths × sources × splits
    versions = {s["name"]: s["version"] for s in plans[512]["sources"]}
    for v in view:
        assert v["policy"] == ("truncate" if v["source"] == "wiki" else "skip")
        assert v["skipped_rows"] == (0 if v["source"] == "wiki" else
                                     rows_longer(root, versions[v["source"]], v["split"], v["max_seq_len"]))
        assert v["cut_positions"] == 0 and v["cut_tokens"] == 0  # wiki windows are 512: nothing to cut
    skipped = {(v["max_seq_len"], v["source"]): v["skipped_rows"] for v in view if v["split"] == "train"}
    assert skipped[(512, "gsm8k")] > skipped[(1024, "gsm8k")] == 0 and skipped[(512, "mbpp")] > skipped[(1024, "mbpp")]
    for limit, report in plans.items():
        for s in report["sources"]:
            assert s["skipped_rows"] == skipped[(limit, s["name"])]


def test_plan_cuts_the_target_when_the_manifest_says_so(root, tokenizer, tmp_path):
    """The same stage B at 256 with gsm8k's overlong = "cut_target": its long rows are cut, not
    skipped, the reader delivers a cut row's first 256 tokens with its prompt whole; wiki's 512-token
    windows are truncated (their default)."""
    from corpus.mixing import PlanReader, open_plan
    from corpus.mixing.plan import make_plan

    path = stage_b(tmp_path, root, tokenizer, 256)
    path.write_text(path.read_text().replace('name = "gsm8k"\n', 'name = "gsm8k"\noverlong = "cut_target"\n'
                                                                  'max_target_loss = 1.0\n', 1))
    plan = open_plan(root, make_plan(path, root, build_missing=False, log=lambda m: None).id)
    view = {r["source"]: r for r in Catalog(root).query_dicts(
        "SELECT * FROM mix_overlong WHERE plan = ? AND split = 'train'", [plan.id])}
    assert view["gsm8k"]["cut_positions"] > 0 and view["wiki"]["cut_positions"] > 0
    assert {s: r["policy"] for s, r in view.items()} == {"wiki": "truncate", "gsm8k": "cut_target", "mbpp": "skip"}
    assert view["wiki"]["skipped_rows"] == 0 and view["mbpp"]["skipped_rows"] > 0
    for sample in PlanReader(plan, "train").take(300):
        assert len(sample.tokens) <= 256
        if sample.source == "gsm8k":
            assert sample.prompt_len < 256  # the prompt is whole whenever the row is cut
