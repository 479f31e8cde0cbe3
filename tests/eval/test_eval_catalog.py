"""Eval data from a real catalog: a GSM8K version registered as kind 'eval' is found and read as
the raw file would be; a synthetic training version's build seed is refused as the holdout seed,
and its training prompts are dropped from the holdout (real ``corpus.build`` runs, validation
included, so this is the slow test of the folder)."""

from __future__ import annotations

import pytest

from tests.eval.conftest import data_file
from trainer.eval.datasets import DataSources, load_items
from trainer.eval.suites import arith
from trainer.eval.suites.base import Options

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from corpus.build import main as build_main
    from corpus.synthetic import generate
    from corpus.tokenizer import train_tokenizer

    tmp = tmp_path_factory.mktemp("catalog")
    texts = [t for it in generate("arith", 300, "0-1", seed=1) for t in (it.prompt, it.target)]
    train_tokenizer(texts, vocab_size=400).save(str(tmp / "tok.json"))
    common = ["--tokenizer", str(tmp / "tok.json"), "--data-dir", str(tmp / "data"), "--quiet"]
    assert build_main(["synthetic:arith", "--count", "500", "--tiers", "0", "--seed", "5", *common]) == 0
    gsm8k = data_file("gsm8k", "test.jsonl")
    assert build_main(["gsm8k", "--from", str(gsm8k), "--split", "test", "--role", "eval", "--limit", "30",
                       "--max-seq-len", "2048", *common]) == 0
    return tmp / "data"


@pytest.mark.shared_data
def test_gsm8k_eval_version_is_read_from_the_catalog(root):
    from tests.eval.conftest import SHARED_DATA

    items, where = load_items("gsm8k", DataSources(data_root=root, raw_dir=SHARED_DATA))
    assert where.startswith("catalog version v") and len(items) == 30
    assert where.endswith("(30 items: fewer than its source: built with --limit 30)")
    raw, _ = load_items("gsm8k", DataSources(raw_dir=SHARED_DATA), limit=30)
    assert sorted((it.prompt, it.reference, it.tier) for it in items) == \
        sorted((it.prompt, it.reference, it.tier) for it in raw)


def test_holdout_refuses_a_training_seed_and_drops_training_prompts(root):
    training = arith.training_of("arith", DataSources(data_root=root))
    assert training.seeds == {5} and training.tiers == (0,) and len(training.prompts) > 400
    with pytest.raises(ValueError, match="holdout seed 5 is a build seed of synthetic:arith"):
        arith.build_items(DataSources(data_root=root), Options(limit=10, arith_seed=5, arith_tasks=("arith",)))
    items, counts, notes = arith.build_items(DataSources(data_root=root), Options(limit=120, arith_tasks=("arith",)))
    assert len(items) == 120 and {it.tier for it in items} == {0}  # the tiers the version was built with
    assert counts["overlap_checked"] == 1 and counts["dropped_seen"] >= 3
    assert not any(it.prompt in training.prompts for it in items)
    assert any("dropped" in n and "also in training" in n for n in notes)


def test_a_catalog_eval_set_says_why_it_has_fewer_items(root, tmp_path):
    """Quarantined records at build time are counted in where the items came from."""
    import json

    from corpus.build import main as build_main

    good = [{"question": f"Ann has {a} pens and buys {a}. How many?", "answer": f"{a} + {a} = {2 * a}\n#### {2 * a}"}
            for a in range(1, 6)]
    path = tmp_path / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in good[:3]) + '{"question": "broken\n'
                    + "".join(json.dumps(r) + "\n" for r in good[3:]))
    data = tmp_path / "data"
    assert build_main(["gsm8k", "--from", str(path), "--split", "test", "--role", "eval", "--max-bad-ratio", "0.5",
                       "--tokenizer", str(root.parent / "tok.json"), "--data-dir", str(data), "--quiet"]) == 0
    items, where = load_items("gsm8k", DataSources(data_root=data))
    assert len(items) == 5 and "(5 items: fewer than its source: 1 records quarantined at build" in where
    assert "SELECT ref, reason FROM quarantine WHERE version = 'v" in where
