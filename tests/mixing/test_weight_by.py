"""``[data] weight_by = "tokens"``: each source's share of delivered tokens meets the window bound
(docs/mixing.md), audited in SQL and recounted from the plan file itself; samples stays the default
and leaves plan ids as they were."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq

from corpus.catalog import Catalog
from corpus.mixing.plan import make_plan
from tests.mixing.conftest import DATA, SOURCES
from tests.mixing.helpers import write_manifest

PLAIN = [{"name": s["name"], "weight": s["weight"]} for s in SOURCES]


def test_token_weights_meet_the_window_bound_in_sql(mix_root, tmp_path):
    data = {**DATA, "train_samples": 6000, "val_samples": 300}
    by_tokens = make_plan(write_manifest(tmp_path / "tokens.toml", {**data, "weight_by": "tokens"}, PLAIN), mix_root,
                          log=lambda m: None)
    by_samples = make_plan(write_manifest(tmp_path / "samples.toml", data, PLAIN), mix_root, log=lambda m: None)
    assert by_tokens.resolved.payload()["weight_by"] == "tokens" and "weight_by" not in by_samples.resolved.payload()
    cat = Catalog(mix_root)
    weights = {s["name"]: s["weight"] for s in PLAIN}
    k = len(PLAIN)
    for plan in (by_tokens, by_samples):
        table = pq.read_table(plan.dir / "plan-train.parquet", columns=["source", "n_tokens"]).to_pydict()
        longest = max(table["n_tokens"])
        bound = max(1, k - 1) * longest  # tokens: any window within this of weight × its tokens
        rows = cat.query_dicts("SELECT source, max(abs(token_error)) AS worst, any_value(weight_by) AS weight_by "
                               "FROM mix_share_window WHERE plan = ? AND split = 'train' GROUP BY source",
                               [plan.id])
        # the view against an independent count from the plan file, window by window
        source = np.array(table["source"])
        n_tokens = np.array(table["n_tokens"], dtype=np.int64)
        worst = {}
        for start in range(0, len(source), DATA["window"]):
            window = slice(start, start + DATA["window"])
            total = n_tokens[window].sum()
            for name, w in weights.items():
                err = abs(n_tokens[window][source[window] == name].sum() - w * total)
                worst[name] = max(worst.get(name, 0.0), err)
        assert {r["source"]: round(r["worst"], 6) for r in rows} == {n: round(e, 6) for n, e in worst.items()}
        if plan is by_tokens:
            assert {r["weight_by"] for r in rows} == {"tokens"}
            assert max(worst.values()) <= bound, (worst, bound)
        else:  # the same sources weighted by samples miss token shares by far more than a row or two
            assert max(worst.values()) > 3 * bound
    shares = {r["source"]: r for r in cat.query_dicts(
        "SELECT source, token_share, realized_share FROM mix_share WHERE plan = ? AND split = 'train'", [by_tokens.id])}
    for name, w in weights.items():
        assert abs(shares[name]["token_share"] - w) < 0.01


def test_token_weighted_plans_are_deterministic_and_respect_max_epochs(mix_root, tmp_path):
    data = {**DATA, "train_samples": 4000, "val_samples": 100, "weight_by": "tokens"}
    first = make_plan(write_manifest(tmp_path / "a.toml", data, PLAIN), mix_root, log=lambda m: None)
    again = make_plan(write_manifest(tmp_path / "a.toml", data, PLAIN), mix_root, log=lambda m: None, force=True)
    assert first.id == again.id
    assert (first.dir / "plan-train.parquet").read_bytes() == (again.dir / "plan-train.parquet").read_bytes()
    table = pq.read_table(first.dir / "plan-train.parquet", columns=["source", "shard", "row", "epoch"]).to_pydict()
    # a row is repeated only after every row of its pool was seen (epoch 1 starts after epoch 0 is complete)
    for name in {s["name"] for s in PLAIN}:
        seen = [(sh, r) for s, sh, r, e in zip(table["source"], table["shard"], table["row"], table["epoch"])
                if s == name and e == 0]
        assert len(seen) == len(set(seen))
