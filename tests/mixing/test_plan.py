"""Plans on a real data root: determinism, catalog registration, SQL audit views, resolution errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from corpus.atomic import sha256_file
from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.mixing.manifest import load_manifest
from corpus.mixing.plan import make_plan, remove_plan
from corpus.mixing.resolve import build_argv
from tests.mixing.conftest import DATA, SOURCES
from tests.mixing.helpers import REPO, run_cli, write_manifest

PLAIN = [{"name": s["name"], "weight": s["weight"]} for s in SOURCES]


def quiet(_message: str) -> None:
    pass


def plan_for(root: Path, path: Path, data: dict | None = None, sources: list | None = None, **kw):
    return make_plan(write_manifest(path, {**DATA, **(data or {})}, sources or PLAIN), root, log=quiet, **kw)


def sql(root: Path, query: str, params: list | None = None) -> list[tuple]:
    with Catalog(root).connect(read_only=True) as con:
        return con.execute(query, params or []).fetchall()


def test_fresh_root_built_everything_from_the_manifest(mix_root):
    """The session root started empty: the tokenizer was trained and every source built."""
    assert (mix_root / "tokenizers" / "test-1k.json").exists()
    rows = sql(mix_root, "SELECT source, status, config FROM versions ORDER BY source")
    assert [r[0] for r in rows] == sorted(s["name"] for s in SOURCES)
    assert all(r[1] == "published" for r in rows)
    assert {json.loads(r[2])["options"]["count"] for r in rows} == {1200, 700, 500}


def test_plan_registered_and_exact_in_sql(mix_root, tmp_path):
    result = plan_for(mix_root, tmp_path / "base.toml")
    assert not result.created  # the fixture planned it already: same payload, same id
    pid = result.id
    (mix, seed, window, n_train, n_val), = sql(
        mix_root, "SELECT name, seed, window_size, train_samples, val_samples FROM mixes WHERE id = ?", [pid])
    assert (seed, window, n_train, n_val) == (0, 500, 6000, 300)
    overall = sql(mix_root, "SELECT split, source, target_share, realized_share, positions FROM mix_share "
                            "WHERE plan = ? ORDER BY split, source", [pid])
    assert len(overall) == 6
    for split, source, target, realized, positions in overall:
        assert abs(realized - target) <= 0.001 * target, (split, source)
    worst, full_windows = sql(mix_root, "SELECT max(abs(error)), count(DISTINCT window_idx) FROM mix_share_window "
                                        "WHERE plan = ? AND split = 'train' AND window_len = 500", [pid])[0]
    assert worst <= 1.0 and full_windows == 12
    # the registered per-window counts equal a recount of the raw plan rows
    assert sql(mix_root, "SELECT count(*) FROM ((SELECT split, (position // 500)::INTEGER, source, tier, count(*), "
                         "sum(n_tokens) FROM mix_positions WHERE plan = ? GROUP BY ALL) EXCEPT (SELECT split, "
                         "window_idx, source, tier, positions, tokens FROM mix_window_counts WHERE mix = ?))",
               [pid, pid]) == [(0,)]
    files = sql(mix_root, "SELECT path, sha256, bytes FROM files WHERE version = ? AND role = 'plan' ORDER BY path",
                [pid])
    assert [Path(p).name for p, _, _ in files] == ["plan-train.parquet", "plan-val.parquet", "plan.json"]
    for path, sha, size in files:
        assert sha256_file(mix_root / path) == sha and (mix_root / path).stat().st_size == size
    table = pq.read_table(mix_root / files[0][0])
    assert table.num_rows == 6000 and table.column("position").to_pylist() == list(range(6000))
    comps = sql(mix_root, "SELECT source, train_draws, train_rows, epochs FROM mix_components WHERE mix = ? "
                          "ORDER BY idx", [pid])
    weight = {s["name"]: s["weight"] for s in SOURCES}
    for source, draws, rows, epochs in comps:
        assert draws == round(6000 * weight[source]) and epochs == pytest.approx(draws / rows)


def test_same_manifest_same_bytes_and_what_changes_the_id(mix_root, tmp_path):
    data = {"train_samples": 3000, "val_samples": 100, "seed": 5}
    first = plan_for(mix_root, tmp_path / "det.toml", data)
    assert first.created
    names = ["plan-train.parquet", "plan-val.parquet", "plan.json"]
    before = {n: (first.dir / n).read_bytes() for n in names}
    remove_plan(mix_root, first.id)
    assert not first.dir.exists()
    again = plan_for(mix_root, tmp_path / "det.toml", data)
    assert again.created and again.id == first.id
    assert {n: (again.dir / n).read_bytes() for n in names} == before
    # trainer-only sections do not re-plan
    lr = make_plan(write_manifest(tmp_path / "lr.toml", {**DATA, **data}, PLAIN,
                                  extra="[train]\nlearning_rate = 0.5\n"), mix_root, log=quiet)
    assert lr.id == first.id and not lr.created
    # a weight, the seed, the window each give another plan
    moved = [dict(s) for s in PLAIN]
    moved[0]["weight"], moved[1]["weight"] = 0.45, 0.30
    ids = {first.id,
           plan_for(mix_root, tmp_path / "w.toml", data, moved).id,
           plan_for(mix_root, tmp_path / "s.toml", {**data, "seed": 6}).id,
           plan_for(mix_root, tmp_path / "win.toml", {**data, "window": 250}).id}
    assert len(ids) == 4


def test_tier_schedule_is_visible_in_sql(mix_root, tmp_path):
    sources = [dict(s) for s in PLAIN]
    sources[0]["tiers"] = {"schedule": [{"at": 0.0, "weights": [0.5, 0.5, 0.0, 0.0]},
                                        {"at": 0.4, "weights": [0.2, 0.2, 0.2, 0.4]},
                                        {"at": 1.0, "weights": [0.2, 0.2, 0.2, 0.4]}]}
    result = plan_for(mix_root, tmp_path / "sched.toml", {"train_samples": 10000, "window": 500}, sources)
    rows = sql(mix_root, "SELECT window_idx, coalesce(share, 0), target_share FROM mix_tier_window "
                         "WHERE plan = ? AND split = 'train' AND source = 'synthetic:arith' AND tier = 3 "
                         "ORDER BY window_idx", [result.id])
    windows = [r[0] for r in rows]
    share = np.array([r[1] for r in rows])
    target = np.array([r[2] for r in rows])
    assert windows == list(range(20))
    assert np.all(np.diff(share[:8]) > 0)  # rises over the first 40% (8 windows of 500 of 10000)
    assert np.allclose(share, target, atol=0.02)
    expected = [np.interp((w * 500 + 250) / 10000, [0, 0.4, 1], [0, 0.4, 0.4]) for w in windows]
    assert np.allclose(target, expected, atol=0.01)
    overall = sql(mix_root, "SELECT share, target_share FROM mix_tier_share WHERE plan = ? AND split = 'train' "
                            "AND source = 'synthetic:arith' AND tier = 3", [result.id])[0]
    assert overall[0] == pytest.approx(overall[1], abs=0.005) and overall[1] == pytest.approx(0.32, abs=0.005)


def test_val_positions_come_only_from_val_splits(mix_root, tmp_path):
    from corpus.mixing import PlanReader, open_plan

    plan = open_plan(mix_root, plan_for(mix_root, tmp_path / "base.toml").id)
    val_ids = {s.id for s in PlanReader(plan, "val")}
    split_of = {}
    for path in (mix_root / "shards").rglob("*.parquet"):
        t = pq.read_table(path, columns=["id", "split"])
        split_of.update(zip(t.column("id").to_pylist(), t.column("split").to_pylist()))
    assert val_ids and {split_of[i] for i in val_ids} == {"val"}
    assert len(plan.positions("val")) == 300


def test_epochs_are_capped_by_max_epochs(mix_root, tmp_path):
    sources = [dict(s) for s in PLAIN]
    sources[2]["max_epochs"] = 2
    with pytest.raises(UserError) as info:
        plan_for(mix_root, tmp_path / "cap.toml", {"train_samples": 20000}, sources)
    text = str(info.value)
    assert "data.sources[2] (synthetic:counting).max_epochs:" in text and "> max_epochs 2" in text
    assert "5,000 draws" in text and "\n" not in text
    sources[2]["max_epochs"] = 20
    ok = plan_for(mix_root, tmp_path / "cap.toml", {"train_samples": 20000}, sources)
    counting = ok.stats["train"][2]
    assert counting.epochs == pytest.approx(5000 / counting.rows) and counting.epochs <= 20


def resolve_error(mix_root, path, data=None, sources=None) -> str:
    with pytest.raises(UserError) as info:
        plan_for(mix_root, path, data, sources)
    text = str(info.value)
    assert "\n" not in text and text.startswith(str(path)), text
    return text


def test_resolution_errors_name_file_and_key(mix_root, tmp_path):
    def with_first(**changes):
        sources = [dict(s) for s in PLAIN]
        sources[0].update(changes)
        return sources

    arith = sql(mix_root, "SELECT id FROM versions WHERE source = 'synthetic:arith'")[0][0]
    lists = sql(mix_root, "SELECT id FROM versions WHERE source = 'synthetic:lists'")[0][0]
    cases = [
        (with_first(name="nope"), None, "data.sources[0].name: unknown source 'nope'"),
        (with_first(version="v0000000000000000"), None, "(synthetic:arith).version: unknown version"),
        (with_first(version=lists), None, f"version {lists} is of source 'synthetic:lists'"),
        (with_first(tiers=[0, 0, 0, 0, 1]), None, "(synthetic:arith).tiers: tier 4 has weight 1 but version"),
        (PLAIN, {"tokenizer": "tokenizers/none.json", "tokenizer_train": None}, "data.tokenizer: "),
        (with_first(name="synthetic:derivations"), None, "no version of synthetic:derivations exists"),
        (with_first(name="synthetic:derivations", build={"tokenizer": "x"}), None,
         "(synthetic:derivations).build.tokenizer: set by the manifest's [data] section"),
        (with_first(name="synthetic:derivations", build={"no_such_flag": 1}), None,
         "(synthetic:derivations).build: corpus.build synthetic:derivations: unknown option 'no_such_flag'"),
    ]
    for i, (sources, data, expect) in enumerate(cases):
        data = {k: v for k, v in {**DATA, **(data or {})}.items() if v is not None}
        path = write_manifest(tmp_path / f"case{i}.toml", data, sources)
        with pytest.raises(UserError) as info:
            make_plan(path, mix_root, log=quiet)
        text = str(info.value)
        assert "\n" not in text and text.startswith(f"{path}: ") and expect in text, (expect, text)
    # an unpublished version: refused by id, skipped by "latest"
    with Catalog(mix_root).connect() as con:
        con.execute("UPDATE versions SET status = 'failed' WHERE id = ?", [arith])
    try:
        text = resolve_error(mix_root, tmp_path / "failed.toml", None, with_first(version=arith))
        assert f"version {arith} is failed, not published" in text
        text = resolve_error(mix_root, tmp_path / "failed2.toml")
        assert "(synthetic:arith).version: no published version of synthetic:arith" in text
    finally:
        with Catalog(mix_root).connect() as con:
            con.execute("UPDATE versions SET status = 'published' WHERE id = ?", [arith])


def test_sources_built_with_another_tokenizer_are_refused(mix_root, tmp_path):
    from corpus.tokenizer import train_tokenizer

    other = tmp_path / "other.json"
    train_tokenizer([f"word{i} number {i * 7}" for i in range(400)], vocab_size=300).save(str(other))
    arith = sql(mix_root, "SELECT id FROM versions WHERE source = 'synthetic:arith'")[0][0]
    text = resolve_error(mix_root, tmp_path / "tok.toml", {"tokenizer": str(other)})
    assert "(synthetic:arith).version: every published version of synthetic:arith was built with another tokenizer" in text
    sources = [dict(s) for s in PLAIN]
    sources[0]["version"] = arith
    text = resolve_error(mix_root, tmp_path / "tok2.toml", {"tokenizer": str(other)}, sources)
    assert f"version {arith} was built with tokenizer" in text and "share one tokenizer" in text


@pytest.mark.parametrize("name", ["demo", "stageA", "stageB", "stageB_scienceqa", "stageC"])
def test_shipped_manifests_name_real_sources_and_valid_build_options(tmp_path, name):
    from corpus.build import parse_args
    from corpus.mixing.resolve import build_request
    from corpus.request import BuildRequest
    from corpus.sources import source_names

    manifest = load_manifest(REPO / "manifests" / f"{name}.toml")
    fake_tok = type("Tok", (), {"path": tmp_path / "t.json"})()
    for i, spec in enumerate(manifest.data.sources):
        assert spec.name in source_names()
        if spec.build is None:
            continue
        request = build_request(manifest, tmp_path, i, spec, fake_tok)  # the typed request the mixer builds with
        assert BuildRequest.from_json(request.to_json()) == request
        # the command shown to users means the same build
        shown = BuildRequest.from_namespace(parse_args(build_argv(manifest, tmp_path, i, spec, fake_tok)))
        assert shown == request
        args = request.settings()
        assert args.max_seq_len == manifest.data.max_seq_len
        for key, value in spec.build.items():
            assert getattr(args, key) in (value, str(value)) or key == "tiers", (name, spec.name, key)


def test_cli_plans_prints_shares_and_exports_blueprint_jsonl(mix_root, tmp_path, capsys):
    manifest = write_manifest(tmp_path / "cli.toml", {**DATA, "train_samples": 900, "val_samples": 60}, PLAIN)
    out = tmp_path / "export"
    proc = run_cli("corpus.mix", str(manifest), "--data-dir", str(mix_root), "--export-jsonl", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["created"] and report["train_samples"] == 900 and report["val_samples"] == 60
    assert [round(s["train_share"], 6) for s in report["sources"]] == [0.4, 0.35, 0.25]
    from corpus.mixing import PlanReader, open_plan

    plan = open_plan(mix_root, report["plan"])
    bos = plan.tokenizer.bos_id
    lines = (out / "train.jsonl").read_text().splitlines()
    assert len(lines) == 900 and len((out / "val.jsonl").read_text().splitlines()) == 60
    for line, sample in zip(lines, PlanReader(plan, "train")):
        rec = json.loads(line)
        assert set(rec) == {"encoder_ids", "decoder_input_ids", "labels"}
        assert rec["encoder_ids"] + rec["labels"] == sample.tokens.tolist()
        assert rec["decoder_input_ids"] == [bos] + rec["labels"][:-1]
    meta = json.loads((out / "meta.json").read_text())
    assert meta["plan"] == report["plan"] and meta["train_samples"] == 900
    assert [s["train"] for s in meta["sources"]] == [360, 315, 225]
    # the table form, and a bad manifest as one line with exit code 2 (in-process: same main())
    from corpus.mix import main

    assert main([str(manifest), "--data-dir", str(mix_root)]) == 0
    printed = capsys.readouterr().out
    assert "already planned" in printed and "synthetic:lists" in printed and "0.3500" in printed
    bad = write_manifest(tmp_path / "bad.toml", {**DATA, "windw": 3}, PLAIN)
    assert main([str(bad), "--data-dir", str(mix_root)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {bad}: data.windw: unknown key"


def test_export_says_its_size_first_and_asks_past_the_threshold(mix_root, tmp_path):
    manifest = write_manifest(tmp_path / "big.toml", {**DATA, "train_samples": 900, "val_samples": 60}, PLAIN)
    out = tmp_path / "export"
    small = {"HRM_EXPORT_CONFIRM_BYTES": "1000"}  # anything over 1 kB asks
    refused = run_cli("corpus.mix", str(manifest), "--data-dir", str(mix_root), "--export-jsonl", str(out), env=small)
    assert refused.returncode == 2 and not out.exists() and "Traceback" not in refused.stderr
    assert "the export would write about" in refused.stderr and "--export-limit N" in refused.stderr
    assert "export of plan" in refused.stdout and "900 train + 60 val lines" in refused.stdout
    limited = run_cli("corpus.mix", str(manifest), "--data-dir", str(mix_root), "--export-jsonl", str(out),
                      "--export-limit", "5", "--yes", env=small)
    assert limited.returncode == 0, limited.stderr
    assert len((out / "train.jsonl").read_text().splitlines()) == 5 and \
        len((out / "val.jsonl").read_text().splitlines()) == 5
    assert json.loads((out / "meta.json").read_text())["limit_per_split"] == 5
    # the estimate is close to what a full export writes
    from corpus.mixing import open_plan
    from corpus.mixing.export import estimate, export_jsonl

    plan = open_plan(mix_root, json.loads(run_cli("corpus.mix", str(manifest), "--data-dir", str(mix_root),
                                                  "--json").stdout)["plan"])
    guess = estimate(plan)
    export_jsonl(plan, tmp_path / "full")
    written = sum((tmp_path / "full" / f"{split}.jsonl").stat().st_size for split in ("train", "val"))
    assert guess["lines"] == 960 and abs(guess["bytes"] - written) / written < 0.15


def test_views_answer_in_any_duckdb_connection(mix_root):
    """The catalog file opens in a plain DuckDB client and the views read the plans in place."""
    con = duckdb.connect(str(mix_root / "catalog.duckdb"), read_only=True)
    try:
        plans = con.execute("SELECT count(DISTINCT plan) FROM mix_positions").fetchone()[0]
        first = con.execute("SELECT id FROM mixes ORDER BY created_at LIMIT 1").fetchone()[0]
        rows = con.execute("SELECT position, source, shard_path FROM mix_range(?, 10, 14)", [first]).fetchall()
    finally:
        con.close()
    assert plans >= 1 and [r[0] for r in rows] == [10, 11, 12, 13, 14]
    assert all((mix_root / r[2]).exists() for r in rows)


def test_moved_data_root_gets_fresh_views(mix_root, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(mix_root, moved)
    result = plan_for(moved, tmp_path / "base.toml")
    assert not result.created
    with Catalog(moved).connect(read_only=True) as con:
        definition = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'mix_positions'").fetchone()[0]
    assert str(moved.resolve()) in definition


def test_a_re_tiered_rule_selects_rows_by_its_own_tiers(mix_root, tmp_path):
    """tier_rule reads the side files of python -m corpus.retier instead of the build rule's tiers."""
    from corpus.retier import main as retier_main

    arith = sql(mix_root, "SELECT id FROM versions WHERE source = 'synthetic:arith'")[0][0]
    sources = [dict(s) for s in PLAIN]
    sources[0].update(tier_rule="length-tokens@v1", tiers=[1.0])  # only tier 0 = rows under 128 tokens
    text = resolve_error(mix_root, tmp_path / "rule0.toml", None, sources)
    assert "(synthetic:arith).tier_rule: version" in text and f"corpus.retier {arith} --rule length-tokens@v1" in text
    assert retier_main([arith, "--rule", "length-tokens@v1", "--data-dir", str(mix_root), "--quiet"]) == 0
    by_length = plan_for(mix_root, tmp_path / "rule.toml", {"train_samples": 2000}, sources)
    del sources[0]["tier_rule"]
    by_level = plan_for(mix_root, tmp_path / "level.toml", {"train_samples": 2000}, sources)
    assert by_length.id != by_level.id
    shard = sql(mix_root, "SELECT path FROM shards WHERE version = ? AND split = 'train'", [arith])
    assert len(shard) == 1
    level = pq.read_table(mix_root / shard[0][0], columns=["tier"]).column("tier").to_numpy()  # build rule
    drawn = {}
    for name, result in (("length", by_length), ("level", by_level)):
        table = pq.read_table(result.dir / "plan-train.parquet")
        table = table.filter(pc.equal(table.column("source").cast(pa.string()), "synthetic:arith"))
        assert table.num_rows == 800 and set(table.column("tier").to_pylist()) == {0}
        drawn[name] = (table.column("n_tokens").to_numpy(), level[table.column("row").to_numpy()])
    assert drawn["length"][0].max() < 128 and len(set(drawn["length"][1].tolist())) > 1  # short rows of any level
    assert set(drawn["level"][1].tolist()) == {0}  # the build rule's tier 0: level-0 rows only
