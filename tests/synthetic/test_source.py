"""synthetic:<task> as a corpus source: flags, records, examples, tier rule, and a real build."""

from __future__ import annotations

import argparse
import json
import pickle

import pytest

from corpus.errors import UserError
from corpus.sources import get_source, source_names
from corpus.sources.synthetic import SOURCES, SyntheticSource, synthetic_source_names
from corpus.synthetic import TASKS, generate


def make(name: str, *flags: str) -> SyntheticSource:
    cls = get_source(name)
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)  # a global build flag in corpus.build
    cls.add_arguments(parser)
    return cls(parser.parse_args(list(flags)))


def test_one_registered_source_per_task():
    assert synthetic_source_names() == sorted(f"synthetic:{t}" for t in TASKS) == sorted(SOURCES)
    assert set(synthetic_source_names()) <= set(source_names())
    for name, cls in SOURCES.items():
        assert get_source(name) is cls and cls.name == name and issubclass(cls, SyntheticSource)
        assert pickle.loads(pickle.dumps(cls)) is cls  # spawned build workers import it by name


def test_records_follow_count_tiers_seed_and_limit():
    source = make("synthetic:arith", "--count", "10", "--tiers", "1,3", "--seed", "5")
    records = list(source.records(None, "train", None))
    assert [r.data for r in records] == generate("arith", 10, [1, 3], seed=5)
    assert records[0].ref == "synthetic:arith#arith-s5-t1-0000000"
    assert len(list(source.records(None, "train", 4))) == 4
    assert source.options() == {"task": "arith", "count": 10, "tiers": [1, 3], "seed": 5,
                                "generator_version": 1}


def test_normalize_keeps_text_features_and_meta_and_tier_is_the_level():
    source = make("synthetic:derivations", "--count", "8", "--seed", "2")
    for record in source.records(None, "train", None):
        ex = source.normalize(record)
        item = record.data
        assert (ex.native_id, ex.prompt, ex.target) == (item.native_id, item.prompt, item.target)
        assert ex.features == item.features and ex.meta == item.meta
        assert source.tier(ex.features) == item.tier == ex.features["level"]
        assert TASKS["derivations"].check(ex.meta, ex.target)
        json.dumps(ex.meta)
    assert source.tier_rule.id == "synthetic-level@v1"


def test_defaults_and_bad_flags():
    source = make("synthetic:lists")
    assert source.options()["count"] == 10_000 and source.options()["tiers"] == [0, 1, 2, 3]
    with pytest.raises(SystemExit):
        make("synthetic:lists", "--tiers", "0-5")
    with pytest.raises(UserError, match="--count"):
        make("synthetic:lists", "--count", "0").options()
    with pytest.raises(UserError, match="no --from"):
        next(make("synthetic:lists").records(["x.jsonl"], "train", None))


def test_build_publishes_a_version_with_every_tier(tmp_path):
    from corpus.build import main as build_main
    from corpus.catalog import Catalog
    from corpus.tokenizer import train_tokenizer

    texts = [t for it in generate("linear", 200, "0-3", seed=1) for t in (it.prompt, it.target)]
    tok_path = tmp_path / "tokenizer.json"
    train_tokenizer(texts, vocab_size=512).save(str(tok_path))
    root = tmp_path / "data"
    args = ["synthetic:linear", "--count", "240", "--tiers", "0-3", "--seed", "4",
            "--tokenizer", str(tok_path), "--data-dir", str(root), "--quiet"]
    assert build_main(args) == 0
    catalog = Catalog(root)
    (vid, rows, quarantined, status), = catalog.query("SELECT id, rows, quarantined, status FROM versions")
    assert (rows, quarantined, status) == (240, 0, "published")
    tiers = dict(catalog.query("SELECT tier, sum(rows) FROM tiers WHERE version = ? GROUP BY 1", [vid]))
    assert tiers == {0: 60, 1: 60, 2: 60, 3: 60}
    assert build_main(args) == 0  # same seed and flags: the same version, already built
    assert catalog.query("SELECT count(*) FROM versions")[0][0] == 1
