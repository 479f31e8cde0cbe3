"""Rows longer than the run's max_seq_len: one set of versions, plans at several lengths and
policies, each checked against the shards themselves (an independent count, row by row)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.mixing import PlanReader, open_plan
from corpus.mixing.overlong import DEFAULT_POLICY, policy_for, version_layout
from corpus.mixing.plan import make_plan
from tests.mixing.conftest import DATA, SOURCES
from tests.mixing.helpers import write_manifest

PLAIN = [{"name": s["name"], "weight": s["weight"]} for s in SOURCES]


def quiet(_message: str) -> None:
    pass


def shard_lengths(root: Path) -> dict[tuple[str, str], dict]:
    """Per (version, split): every row's (shard, row) → (prompt ids, target ids), read from Parquet."""
    out: dict[tuple[str, str], dict] = {}
    for s in Catalog(root).query_dicts("SELECT version, split, idx, path FROM shards"):
        t = pq.read_table(root / s["path"], columns=["prompt_ids", "target_ids"])
        rows = out.setdefault((s["version"], s["split"]), {})
        for r, (p, q) in enumerate(zip(t.column("prompt_ids").to_pylist(), t.column("target_ids").to_pylist())):
            rows[(s["idx"], r)] = (p, q)
    return out


def expected_drawable(prompt: list, target: list, policy: str, limit: int) -> bool:
    n = len(prompt) + len(target)
    return {"skip": n <= limit, "cut_target": n <= limit or len(prompt) < limit, "truncate": True}[policy]


@pytest.fixture(scope="module")
def rows(mix_root):
    return shard_lengths(mix_root)


def plan_at(root: Path, directory: Path, limit: int, policy: str | None = None, per_source: dict | None = None):
    data = {**DATA, "max_seq_len": limit, "train_samples": 3000, "val_samples": 200}
    if policy:
        data["overlong"] = policy
    if policy in ("cut_target", "truncate") or "truncate" in (per_source or {}).values():
        data["max_target_loss"] = 1.0  # cutting targets is accepted explicitly (refused by default)
    sources = [{**s, **({"overlong": per_source[s["name"]]} if per_source and s["name"] in per_source else {})}
               for s in PLAIN]
    name = f"len{limit}-{policy or 'default'}-{len(per_source or {})}.toml"
    return make_plan(write_manifest(directory / name, data, sources), root, log=quiet)


def long_limit(rows, prompts: bool = False) -> int:
    """A length that about a third of the fixture's rows exceed, so every policy has work to do
    (``prompts``: that half of the prompts reach, so cut_target skips some rows and cuts others)."""
    if prompts:  # the source with the longest prompts keeps half of them
        return max(int(np.median([len(p) for p, _ in r.values()])) for r in rows.values())
    lengths = np.concatenate([[len(p) + len(q) for p, q in r.values()] for r in rows.values()])
    return int(np.percentile(lengths, 66))


@pytest.mark.parametrize("policy, prompts", [("skip", False), ("cut_target", False), ("cut_target", True),
                                             ("truncate", False)])
def test_each_policy_draws_and_cuts_exactly_what_the_shards_say(mix_root, rows, tmp_path, policy, prompts):
    limit = long_limit(rows, prompts)
    versions_before = Catalog(mix_root).query("SELECT count(*) FROM versions")[0][0]
    result = plan_at(mix_root, tmp_path, limit, policy)
    assert Catalog(mix_root).query("SELECT count(*) FROM versions")[0][0] == versions_before  # no rebuild
    plan = open_plan(mix_root, result.id)
    view = {(r["split"], r["source"]): r for r in Catalog(mix_root).query_dicts(
        "SELECT * FROM mix_overlong WHERE plan = ?", [result.id])}
    assert len(view) == 2 * len(SOURCES)
    total_skipped = total_cut = 0
    for split in ("train", "val"):
        table = pq.read_table(plan.dir / f"plan-{split}.parquet").to_pydict()
        for c in plan.sources:
            pool = rows[(c["version"], split)]
            skipped = sum(not expected_drawable(p, q, policy, limit) for p, q in pool.values())
            cut_rows = sum(len(p) + len(q) > limit and expected_drawable(p, q, policy, limit) for p, q in pool.values())
            mine = [i for i, s in enumerate(table["source"]) if s == c["source"]]
            drawn = [pool[(table["shard"][i], table["row"][i])] for i in mine]
            assert all(expected_drawable(p, q, policy, limit) for p, q in drawn)
            assert [table["n_tokens"][i] for i in mine] == [min(len(p) + len(q), limit) for p, q in drawn]
            cut = sum(len(p) + len(q) > limit for p, q in drawn)
            v = view[(split, c["source"])]
            assert (v["policy"], v["max_seq_len"], v["rows"]) == (policy, limit, len(pool))
            assert (v["skipped_rows"], v["cut_rows"], v["positions"], v["cut_positions"]) == \
                   (skipped, cut_rows, len(mine), cut)
            assert v["cut_tokens"] == sum(max(0, len(p) + len(q) - limit) for p, q in drawn)
            # target tokens: of every row, of the skipped rows, and cut from the rows still drawn
            kept = [(p, q) for p, q in pool.values() if expected_drawable(p, q, policy, limit)]
            assert v["target_tokens"] == sum(len(q) for _, q in pool.values())
            assert v["skipped_target_tokens"] == v["target_tokens"] - sum(len(q) for _, q in kept)
            assert v["cut_target_tokens"] == sum(len(q) - len((p + q)[len(p):limit]) for p, q in kept)
            total_skipped, total_cut = total_skipped + skipped, total_cut + cut
    # each policy had something to do
    assert (total_skipped > 0) == (policy == "skip" or prompts) and (total_cut > 0) == (policy != "skip")
    # the reader delivers exactly the plan: the row's first min(n, max_seq_len) tokens
    table = pq.read_table(plan.dir / "plan-train.parquet").to_pydict()
    names = [c["source"] for c in plan.sources]
    for sample in PlanReader(plan, "train").take(600):
        i = sample.position
        version = plan.sources[names.index(table["source"][i])]["version"]
        p, q = rows[(version, "train")][(table["shard"][i], table["row"][i])]
        assert sample.tokens.tolist() == (p + q)[:limit] and sample.prompt_len == min(len(p), limit)
    batch = next(PlanReader(plan, "train").iter_batches(16, 2 * limit))
    assert batch.lengths.tolist() == table["n_tokens"][:16] and batch.tokens.shape == (16, 2 * limit)


def test_same_versions_serve_short_and_long_plans_with_their_own_ids(mix_root, rows, tmp_path):
    limit = long_limit(rows)
    short, default_short, long = (plan_at(mix_root, tmp_path, limit, "truncate"), plan_at(mix_root, tmp_path, limit),
                                  plan_at(mix_root, tmp_path, 2048))
    assert len({short.id, default_short.id, long.id}) == 3  # the policy and max_seq_len decide the plan id
    assert [c.version_id for c in short.resolved.components] == [c.version_id for c in long.resolved.components]
    counts = {r[0]: r[1:] for r in Catalog(mix_root).query(
        "SELECT plan, sum(skipped_rows), sum(cut_positions) FROM mix_overlong WHERE split = 'train' "
        "GROUP BY plan", [])}
    assert counts[long.id] == (0, 0)  # at 2048 every row is whole
    assert counts[short.id][0] == 0 and counts[short.id][1] > 0
    assert counts[default_short.id][0] > 0 and counts[default_short.id][1] == 0  # examples: skip by default
    plan = open_plan(mix_root, long.id)
    table = pq.read_table(plan.dir / "plan-train.parquet").to_pydict()
    assert max(table["n_tokens"]) > limit


def test_per_source_policy_overrides_the_mix_and_prints_in_the_table(mix_root, rows, tmp_path, capsys):
    from corpus.mix import main

    limit = long_limit(rows)
    result = plan_at(mix_root, tmp_path, limit, "skip", {"synthetic:lists": "truncate"})
    got = {c.name: c.overlong for c in result.resolved.components}
    assert got == {"synthetic:arith": "skip", "synthetic:lists": "truncate", "synthetic:counting": "skip"}
    assert [s["overlong"] for s in result.resolved.payload()["sources"]] == list(got.values())
    manifest = tmp_path / f"len{limit}-skip-1.toml"
    assert main([str(manifest), "--data-dir", str(mix_root)]) == 0
    out = capsys.readouterr().out
    assert "already planned" in out and f"rows longer than max_seq_len {limit} (train):" in out
    stats = {c.name: result.stats["train"][c.index] for c in result.resolved.components}
    for name, st in stats.items():
        assert f"{name} {got[name]}: {st.skipped_rows:,} rows skipped, {st.cut_draws:,} positions cut" in out


def test_nothing_fits_is_one_line_naming_the_key(mix_root, tmp_path):
    with pytest.raises(UserError) as info:
        plan_at(mix_root, tmp_path, 2, "skip")
    text = str(info.value)
    assert "\n" not in text and "(synthetic:arith).overlong: no train row of" in text
    assert 'fits data.max_seq_len 2 under overlong = "skip" (' in text and 'set overlong = "truncate"' in text
    bad = write_manifest(tmp_path / "bad.toml", {**DATA, "overlong": "drop"}, PLAIN)
    with pytest.raises(UserError, match=r"bad.toml: data.overlong: Input should be 'skip', 'cut_target' or "
                                        r"'truncate' \(got 'drop'\)"):
        make_plan(bad, mix_root, log=quiet)


def test_default_policy_follows_the_version_layout():
    windows = {"source": "wiki", "config": '{"layout": "windows"}'}
    examples = {"source": "jsonl", "config": {"layout": "examples", "options": {"target": None}}}
    old_text = {"source": "jsonl", "config": {"options": {"target": None}}}  # built before layouts were recorded
    old_qa = {"source": "gsm8k", "config": "{}"}
    assert [version_layout(v) for v in (windows, examples, old_text, old_qa)] == \
           ["windows", "examples", "windows", "examples"]
    assert DEFAULT_POLICY == {"examples": "skip", "windows": "truncate"}
    assert policy_for(None, None, windows) == "truncate" and policy_for(None, None, old_qa) == "skip"
    assert policy_for(None, "cut_target", windows) == "cut_target"
    assert policy_for("skip", "cut_target", windows) == "skip"


def test_a_tier_emptied_by_skipping_says_why(mix_root, tmp_path):
    arith = Catalog(mix_root).query_dicts("SELECT v.id, s.path FROM versions v JOIN shards s ON s.version = v.id "
                                          "WHERE v.source = 'synthetic:arith' AND s.split = 'train'")
    cols = [pq.read_table(mix_root / r["path"], columns=["tier", "n_tokens"]).to_pydict() for r in arith]
    top = max(t for c in cols for t in c["tier"])
    limit = min(n for c in cols for t, n in zip(c["tier"], c["n_tokens"]) if t == top) - 1
    skipped = sum(n > limit for c in cols for n in c["n_tokens"])
    assert 0 < skipped < sum(len(c["tier"]) for c in cols)
    sources = [{**PLAIN[0], "tiers": {str(top): 1.0}}] + PLAIN[1:]
    path = write_manifest(tmp_path / "tier.toml", {**DATA, "max_seq_len": limit, "overlong": "skip"}, sources)
    with pytest.raises(UserError) as info:
        make_plan(path, mix_root, log=quiet)
    text = str(info.value)
    assert f"(synthetic:arith).tiers: tier {top} has weight 1 but version" in text
    assert f"; {skipped:,} rows longer than data.max_seq_len {limit} skipped (overlong = \"skip\"))" in text


def test_cutting_targets_is_refused_unless_the_manifest_accepts_it(mix_root, rows, tmp_path, capsys):
    """A plan that would deliver rows without (part of) their targets says so in one line and
    names the key; with max_target_loss set it plans, and corpus.mix prints the counts."""
    from corpus.mix import main

    limit = long_limit(rows)
    data = {**DATA, "max_seq_len": limit, "train_samples": 3000, "val_samples": 200, "overlong": "truncate"}
    refused = write_manifest(tmp_path / "cut.toml", data, PLAIN)
    with pytest.raises(UserError) as info:
        make_plan(refused, mix_root, log=quiet)
    text = str(info.value)
    assert "\n" not in text and "cut.toml: data.sources[0] (synthetic:arith).max_target_loss: v" in text
    assert f'to overlong = "truncate" at max_seq_len {limit}, over max_target_loss 0.01' in text
    accepted = write_manifest(tmp_path / "cut-ok.toml", data, [{**s, "max_target_loss": 1.0} for s in PLAIN])
    plan_id = make_plan(accepted, mix_root, log=quiet).id  # maybe planned before under another name: same id
    assert main([str(accepted), "--data-dir", str(mix_root)]) == 0
    out = capsys.readouterr().out
    counts = {r["source"]: r for r in Catalog(mix_root).query_dicts(
        "SELECT * FROM mix_overlong WHERE plan = ? AND split = 'train'", [plan_id])}
    assert len(counts) == len(PLAIN)
    assert all(r["cut_target_tokens"] > 0 for r in counts.values())
    for name, r in counts.items():
        assert f"{name} truncate: {r['skipped_rows']:,} rows skipped, {r['cut_positions']:,} positions cut, " \
               f"{r['cut_target_tokens']:,} of {r['target_tokens']:,} target tokens cut" in out
    # the quality report shows the same counts
    from corpus.quality.report import select_versions, summary_markdown

    catalog = Catalog(mix_root)
    markdown, _ = summary_markdown(catalog, mix_root, select_versions(catalog), None)
    mix_name = catalog.query("SELECT name FROM mixes WHERE id = ?", [plan_id])[0][0]
    for name, r in counts.items():
        assert (f"| {mix_name} `{plan_id}` | {name} | truncate | {limit} | {r['skipped_rows']:,} of {r['rows']:,} "
                f"| {r['cut_positions']:,} of {r['positions']:,} | 0 (0.0%) "
                f"| {r['cut_target_tokens']:,} ({r['cut_target_tokens'] / r['target_tokens']:.1%}) |") in markdown
