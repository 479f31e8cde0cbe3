"""The native engine agrees with Great Expectations, result for result, on every suite.

Both engines run the same suites (corpus/quality/suites.py) over the same frames: the facts of
real shards built from ../shared/data (one version per suite kind), and the same facts
corrupted so that every expectation type fails — nulls, NaNs, out-of-range values, values
outside the set, duplicates, regex misses, mismatched pairs, a row count off, missing sidecars,
schema changes — with more than 5 unexpected rows, so which examples are listed matters. The
whole ``ExpectationSuiteValidationResult`` dicts must be equal; only ids, tracebacks and run
metadata (``meta``: times, run ids, the engine's name) may differ.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from corpus.catalog import Catalog
from corpus.quality.facts import shard_facts
from corpus.quality.frame import Frame
from corpus.quality.gx import Runner
from corpus.quality.native import ENGINE_NAME, NativeRunner
from corpus.quality.spec import expect
from corpus.quality.suites import Limits, rows_expectations, schema_expectations, version_expectations
from corpus.quality.validate import validate_version
from corpus.shards import sidecar_paths
from tests.quality.conftest import REPO, SHARED, build, qa_records, write_jsonl

# one version per suite kind, built from the shared data (kind, source, flags, input under SHARED)
KIND_BUILDS = {
    "qa": ("gsm8k", ["--from", "gsm8k/train_sample.jsonl"]),
    "code": ("mbpp", ["--from", "mbpp/mbpp.jsonl", "--split", "train"]),
    "text": ("wiki", ["--from", "wikitext2/valid.txt", "--max-seq-len", "256"]),
    "image": ("science_qa", ["--from", "scienceqa", "--split", "train"]),
    "synthetic": ("synthetic:arith", ["--count", "400"]),
}


def normalized(result: dict) -> str:
    """The result as canonical JSON without what may differ: ids, tracebacks, run metadata."""
    out = json.loads(json.dumps(result))
    out.pop("meta")
    for r in out["results"]:
        r["expectation_config"].pop("id")
        info = r["exception_info"]
        if "raised_exception" not in info:  # metrics that failed: keyed by GX's metric configuration id
            r["exception_info"] = sorted((re.search(r"metric_name='([^']+)'", key).group(1),
                                          value["exception_message"], value["raised_exception"])
                                         for key, value in info.items())
    return json.dumps(out, sort_keys=True, indent=1)


def assert_same(native, gx) -> None:
    assert native.result["meta"]["engine"] == ENGINE_NAME
    assert (native.engine, gx.engine) == ("native", "gx")
    assert normalized(native.result) == normalized(gx.result)
    assert (native.suite, native.success, native.evaluated, native.failed, native.failures) == \
        (gx.suite, gx.success, gx.evaluated, gx.failed, gx.failures)


class Engines:
    """A GX runner and a native runner driven in lockstep (same suites, same batch numbers)."""

    def __init__(self):
        self.gx = Runner()
        self.native = NativeRunner()
        self.runs = 0

    def run(self, suite: str, expectations: list, frame: Frame, index_column: str | None = "id"):
        self.runs += 1
        suite = f"{suite} #{self.runs}"  # a fresh suite per call: each call brings its own expectations
        native = self.native.run(suite, expectations, frame, "asset", index_column=index_column)
        gx = self.gx.run(suite, expectations, frame, "asset", index_column=index_column)
        assert_same(native, gx)
        return native


@pytest.fixture(scope="module")
def engines() -> Engines:
    return Engines()


@pytest.fixture(scope="module")
def kind_roots(tmp_path_factory, tokenizer_path) -> dict[str, Path]:
    """A data root per suite kind holding one published version built from ../shared/data."""
    if not SHARED.is_dir():
        pytest.skip("needs ../shared/data (absent on a fresh clone)")
    roots = {}
    for kind, (source, flags) in KIND_BUILDS.items():
        args = [SHARED / a if i and flags[i - 1] == "--from" else a for i, a in enumerate(flags)]
        if any(isinstance(a, Path) and not a.exists() for a in args):
            continue
        root = tmp_path_factory.mktemp(f"kind-{kind}")
        assert build(root, tokenizer_path, source, *map(str, args)) == 0
        roots[kind] = root
    return roots


def the_version(root: Path) -> str:
    return Catalog(root).query("SELECT id FROM versions")[0][0]


def both_engines(root: Path, vid: str) -> list:
    """validate_version with each engine (nothing written); their results, shard by shard, must agree."""
    native = validate_version(Catalog(root), root, vid, write=False, engine="native")
    gx = validate_version(Catalog(root), root, vid, write=False, engine="gx")
    assert [(s, r.suite) for s, r, _ in native.results] == [(s, r.suite) for s, r, _ in gx.results]
    for (_, n, _), (_, g, _) in zip(native.results, gx.results):
        if n.result is None:  # an unreadable shard: no engine ran
            assert (n.failures, n.success) == (g.failures, g.success)
        else:
            assert_same(n, g)
    assert native.success == gx.success
    return native.results


# -- real shards, every kind ----------------------------------------------------------------------

@pytest.mark.parametrize("kind", list(KIND_BUILDS))
def test_engines_agree_on_real_shards_of_every_kind(kind_roots, kind):
    if kind not in kind_roots:
        pytest.skip(f"needs the shared input of {KIND_BUILDS[kind][0]}")
    root = kind_roots[kind]
    vid = the_version(root)
    results = both_engines(root, vid)
    suites = {r.suite for _, r, _ in results}
    assert suites == {"shard.schema", f"{kind}.rows", "version.rows"}
    assert all(r.success for _, r, _ in results if r.suite != "version.rows" or kind != "synthetic")


# -- corrupted facts frames: every expectation type fails ---------------------------------------

def real_facts(kind_roots, kind: str = "qa"):
    if kind not in kind_roots:
        pytest.skip(f"needs the shared input of {KIND_BUILDS[kind][0]}")
    root = kind_roots[kind]
    catalog = Catalog(root)
    vid = the_version(root)
    shard = catalog.shards(vid, "train")[0]
    v = catalog.version(vid)
    limits = Limits(v["source"], 1024, int(v["max_seq_len"]), 3, int(v["rows"]), 0.01)
    return shard_facts(root / shard["path"]), limits


def copy_frame(frame: Frame, **columns) -> Frame:
    out = Frame({name: values.copy() for name, values in frame.items()})
    for name, values in columns.items():
        out[name] = values
    return out


def corruptions(rows: Frame) -> dict[str, Frame]:
    """Facts frames that fail each expectation of a rows suite, many rows at a time."""
    n = len(rows)
    assert n > 40
    every = np.arange(n) % 7 == 3  # > 5 rows hit, spread over the shard
    ids = rows["id"].copy()
    ids[every] = None
    dup_ids = rows["id"].copy()
    dup_ids[1::9] = dup_ids[0]  # one id repeated many times
    dup_ids[2::11] = dup_ids[5]
    splits = rows["split"].copy()
    splits[every] = "test"
    splits[::13] = None
    tier = rows["tier"].astype(np.float64)
    tier[every] = 9
    tier[::17] = np.nan
    n_tokens = rows["n_tokens"].copy()
    n_tokens[every] += 1000
    n_tokens[::19] = 0
    max_token = rows["max_token"].copy()
    max_token[every] = 1024
    max_token[::23] = np.nan
    min_token = rows["min_token"].copy()
    min_token[every] = -1.0
    sidecar = np.full(n, np.nan)
    offsets = rows["sidecar_offset_ok"].copy()
    offsets[every] = False
    json_ok = rows["json_ok"].copy()
    json_ok[::5] = False
    hashes = rows["text_hash"].copy()
    hashes[: n // 3] = hashes[0]
    chars = rows["prompt_chars"].copy()
    chars[every] = 0
    text_chars = rows["text_chars"].copy()
    text_chars[every] = 0
    source = rows["source"].copy()
    source[every] = "elsewhere"
    source[1] = None
    return {
        "null and repeated ids": copy_frame(rows, id=ids),
        "duplicated ids": copy_frame(rows, id=dup_ids),
        "split outside the set, some missing": copy_frame(rows, split=splits),
        "source outside the set": copy_frame(rows, source=source),
        "tier out of range, NaN": copy_frame(rows, tier=tier),
        "lengths off, pairs mismatched": copy_frame(rows, n_tokens=n_tokens),
        "token ids outside the vocabulary": copy_frame(rows, max_token=max_token, min_token=min_token),
        "missing sidecars": copy_frame(rows, sidecar_n_tokens=sidecar, sidecar_prompt_len=sidecar,
                                       sidecar_min_token=sidecar, sidecar_max_token=sidecar,
                                       sidecar_token_sum=sidecar, sidecar_offset_ok=np.zeros(n, dtype=bool)),
        "sidecar offsets and JSON bad": copy_frame(rows, sidecar_offset_ok=offsets, json_ok=json_ok),
        "a third of the texts repeat": copy_frame(rows, text_hash=hashes),
        "empty texts": copy_frame(rows, prompt_chars=chars, target_chars=chars, text_chars=text_chars),
    }


@pytest.mark.parametrize("kind", ["qa", "text", "image"])
def test_engines_agree_on_corrupted_rows_frames(kind_roots, engines, kind):
    facts, limits = real_facts(kind_roots, kind)
    expectations = rows_expectations(kind, limits)
    for name, frame in corruptions(facts.rows).items():
        result = engines.run(f"{kind}.rows", expectations, frame)
        assert result.failures, name  # text kinds: an empty window is a warning, not a failure
        assert any(f.get("unexpected_count", 0) > 5 or f.get("observed", 1) < 0.9 for f in result.failures), name


def test_engines_agree_when_the_image_columns_are_gone(kind_roots, engines):
    """An image suite over a shard whose image facts are missing: GX's metrics fail (errors listed first)."""
    facts, limits = real_facts(kind_roots, "image")
    frame = facts.rows.select([c for c in facts.rows.columns if not c.startswith("image")])
    result = engines.run("image.rows", rows_expectations("image", limits), frame)
    assert not result.success and result.result["results"][0]["exception_info"]


def test_engines_agree_on_the_text_id_regex(kind_roots, engines):
    facts, limits = real_facts(kind_roots, "text")
    ids = facts.rows["id"].copy()
    ids[::3] = [f"doc{k}#window{k}" for k in range(len(ids[::3]))]
    ids[1] = "doc#w12\n"  # Python's $ matches before a final newline; RE2's would not
    ids[4] = "doc#w\u0663"  # an Arabic-Indic digit: \d in Python's re, not in RE2
    ids[7] = None
    result = engines.run("text.rows", rows_expectations("text", limits), copy_frame(facts.rows, id=ids))
    regex = next(f for f in result.failures if f["expectation"] == "expect_column_values_to_match_regex")
    assert regex["unexpected_count"] == len(ids[::3])


def test_engines_agree_on_the_version_suite(kind_roots, engines):
    from dataclasses import replace

    from corpus.quality.validate import in_both_splits

    facts, limits = real_facts(kind_roots, "qa")
    rows = facts.rows
    n = len(rows)
    limits = replace(limits, rows=n)  # the one shard is the whole version here

    def version_frame(ids, splits, shard_splits, hashes) -> Frame:
        frame = Frame({"id": ids, "split": splits, "text_hash": hashes,
                       "shard": np.full(len(ids), "shards/x/train-00000.parquet", dtype=object),
                       "shard_split": shard_splits})
        frame["in_both_splits"] = in_both_splits(frame["id"], frame["split"])
        return frame

    good = version_frame(rows["id"], rows["split"], rows["split"].copy(), rows["text_hash"])
    assert engines.run("version.rows", version_expectations(limits), good).success
    ids = np.concatenate([rows["id"], rows["id"][:12], np.array([None, None], dtype=object)])
    splits = np.concatenate([rows["split"], np.array(["val"] * 12 + [None, "val"], dtype=object)])
    shard_splits = np.concatenate([rows["split"], np.array(["train"] * 12 + [None, "train"], dtype=object)])
    hashes = np.concatenate([rows["text_hash"], rows["text_hash"][:14]])
    bad = version_frame(ids, splits, shard_splits, hashes)
    result = engines.run("version.rows", version_expectations(limits), bad)
    failed = {(f["expectation"], f["kwargs"].get("column")) for f in result.failures}
    assert failed == {("expect_table_row_count_to_equal", None), ("expect_column_values_to_be_unique", "id"),
                      ("expect_column_values_to_be_in_set", "in_both_splits"),
                      ("expect_column_pair_values_to_be_equal", None),
                      ("expect_column_proportion_of_unique_values_to_be_between", "text_hash")}
    assert int(bad["in_both_splits"].sum()) == 24 and n + 14 == len(bad)


def test_engines_agree_on_schema_changes(kind_roots, engines):
    facts, _ = real_facts(kind_roots, "qa")
    schema = facts.schema
    expectations = schema_expectations(False)
    assert engines.run("shard.schema", expectations, schema, index_column="column").success
    columns, signatures = schema["column"].tolist(), schema["signature"].tolist()
    changed = Frame({  # a column dropped, one retyped, one added twice, one made nullable
        "column": np.asarray(columns[1:] + ["extra", "extra", "tier"], dtype=object),
        "signature": np.asarray([s.replace("int64", "int32").replace(" not null", "") for s in signatures[1:]]
                                + ["extra: string", "extra: string", "tier: double"], dtype=object)})
    result = engines.run("shard.schema", expectations, changed, index_column="column")
    assert {f["expectation"] for f in result.failures} == {"expect_column_distinct_values_to_equal_set",
                                                           "expect_column_values_to_be_unique"}
    with_image = engines.run("shard.schema", schema_expectations(True), schema, index_column="column")
    assert not with_image.success


# -- frames built by hand: the semantics at the edges -------------------------------------------

EVERY_TYPE = [
    ("expect_column_values_to_be_between", dict(column="x", min_value=2, max_value=5)),
    ("expect_column_values_to_be_between", dict(column="x", min_value=2, strict_min=True, mostly=0.5)),
    ("expect_column_values_to_not_be_null", dict(column="x")),
    ("expect_column_values_to_be_unique", dict(column="x")),
    ("expect_column_values_to_be_in_set", dict(column="x", value_set=[1, 2, "a"])),
    ("expect_column_values_to_match_regex", dict(column="x", regex=r"^\d")),
    ("expect_column_pair_values_to_be_equal", dict(column_A="x", column_B="y")),
    ("expect_column_proportion_of_unique_values_to_be_between", dict(column="x", min_value=0.9)),
    ("expect_column_distinct_values_to_equal_set", dict(column="x", value_set=[1, 2, "a", "b"])),
    ("expect_table_row_count_to_equal", dict(value=7)),
]


def every_type(column: str = "x", other: str = "y", severity: str = "critical") -> list:
    out = []
    for i, (kind, kwargs) in enumerate(EVERY_TYPE):
        kwargs = {k: (column if v == "x" else other if v == "y" else v) for k, v in kwargs.items()}
        out.append(expect(kind, f"check {i}", severity="warning" if i == 3 else severity, **kwargs))
    return out


EDGE_FRAMES = {
    "floats with NaN": {"x": [1.0, np.nan, 3.0, 3.0, 9.0, np.nan, -4.0, 2.0], "y": [1, 2, 3, 4, 5, 6, 7, 8]},
    "ints": {"x": [1, 2, 2, 7, 7, 7, 0, 5], "y": [1.0, 2.0, np.nan, 7.0, 8.0, np.nan, 0.0, 5.0]},
    "text with None": {"x": ["1a", None, "b", "b", "2", None, "a", "zz"], "y": ["1a", None, None, "b", "c", "d", "a", "q"]},
    "mixed objects": {"x": [1, "a", None, 2.5, "a", np.nan, None, True], "y": [1, "a", None, None, "b", 2, None, 1]},
    "booleans": {"x": [True, False, True, True, False, True, True, True], "y": [True, True, 1, 0, False, True, 1, 1]},
    "signed zeros, big ints": {"x": [0.0, -0.0, 1.0, np.nan, 1.0, -0.0, 2.0**60, 3.0],
                               "y": [0, 0, 1, 2, 2**60 + 1, 0, 2**60, -3]},
    "all missing": {"x": [np.nan] * 5, "y": [np.nan, 1.0, np.nan, 2.0, np.nan]},
    "all None": {"x": [None] * 6, "y": ["a", None, "b", None, "c", None]},
    "empty": {"x": np.zeros(0), "y": np.zeros(0)},
}


def edge_frame(columns: dict) -> Frame:
    n = len(next(iter(columns.values())))
    frame = {"id": np.asarray([f"r{i}" if i % 4 != 2 else None for i in range(n)], dtype=object)}
    for name, values in columns.items():
        values = list(values) if not isinstance(values, np.ndarray) else values
        array = np.asarray(values)
        if array.dtype.kind in "OUS" or any(v is None or isinstance(v, str) for v in values):
            array = np.empty(len(values), dtype=object)
            array[:] = values
        frame[name] = array
    return Frame(frame, rows=n)


@pytest.mark.parametrize("name", list(EDGE_FRAMES))
def test_engines_agree_at_the_edges(engines, name):
    frame = edge_frame(EDGE_FRAMES[name])
    engines.run("edges", every_type(), frame)
    engines.run("edges without ids", every_type(), frame.select(["x", "y"]), index_column="id")
    engines.run("edges, the other way", every_type("y", "x"), frame)


def test_the_subtleties_both_engines_share(engines):
    """What "the same" means at the edges, pinned (each run also asserts GX gives exactly this)."""

    def results(name: str) -> dict:
        out = engines.run("subtle", every_type(), edge_frame(EDGE_FRAMES[name])).result["results"]
        return {r["expectation_config"]["description"]: r for r in out}

    floats, text, mixed = results("floats with NaN"), results("text with None"), results("mixed objects")
    # float NaNs are fresh objects, counted one by one; the text dtype's NaN is one object
    assert floats["check 2"]["result"]["partial_unexpected_counts"] == [{"value": None, "count": 1}] * 2
    assert text["check 2"]["result"]["partial_unexpected_counts"] == [{"value": None, "count": 2}]
    assert "missing_count" not in text["check 2"]["result"]  # not_be_null reports no missing values
    # pairs: a row counts unless both values are missing; values that do not sort get no counts
    assert text["check 6"]["result"]["missing_count"] == 1
    assert "partial_unexpected_counts" not in text["check 6"]["result"]
    assert "partial_unexpected_counts" not in mixed["check 6"]["result"]
    # a between over text is a metric error, listed first, with an empty result
    first = engines.run("subtle", every_type(), edge_frame(EDGE_FRAMES["text with None"])).result["results"][0]
    assert first["result"] == {} and first["expectation_config"]["description"] == "check 0"
    # unique marks every copy; warnings fail the expectation, not the suite
    assert text["check 3"]["result"]["partial_unexpected_list"] == ["b", "b"]
    assert text["check 3"]["expectation_config"]["severity"] == "warning"
    # bounds are floats in the configuration, as GX's pydantic models make them
    assert repr(floats["check 0"]["expectation_config"]["kwargs"]["min_value"]) == "2.0"


def test_engines_agree_on_missing_columns_and_text_bounds(engines):
    frame = edge_frame(EDGE_FRAMES["text with None"])
    result = engines.run("missing", every_type("nope", "y") + every_type("x", "gone"), frame)
    assert sum("raised_exception" not in r["exception_info"] for r in result.result["results"]) >= 10


def test_engines_agree_on_many_unexpected_rows(engines):
    """More unexpected rows than are listed: which 5 and in which order, and their counts."""
    rng = np.random.default_rng(7)
    n = 5000
    x = rng.integers(0, 12, n).astype(np.float64)
    x[rng.random(n) < 0.1] = np.nan
    text = np.asarray([f"v{int(v) % 4}" if v == v else None for v in x], dtype=object)
    frame = Frame({"id": np.asarray([f"row{i}" for i in range(n)], dtype=object), "x": x, "y": x[::-1].copy(),
                   "t": text, "u": text[::-1].copy()})
    engines.run("many", every_type(), frame)
    engines.run("many text", every_type("t", "u"), frame)


# -- whole versions: files corrupted on disk, validate_version with each engine -----------------

def test_validate_version_agrees_on_a_damaged_version(kind_roots, tmp_path):
    if "qa" not in kind_roots:
        pytest.skip("needs ../shared/data/gsm8k")
    root = tmp_path / "data"
    shutil.copytree(kind_roots["qa"], root)
    vid = the_version(root)
    catalog = Catalog(root)
    train, val = (root / catalog.shards(vid, split)[0]["path"] for split in ("train", "val"))
    table = pq.read_table(train)
    columns = table.to_pydict()
    for i in range(0, len(columns["id"]), 6):
        columns["prompt_ids"][i] = list(columns["prompt_ids"][i]) + [1023, 1500]  # past the vocabulary, longer
    columns["id"][3] = columns["id"][4]
    pq.write_table(pa.Table.from_pydict(columns, schema=table.schema), train)
    for path in sidecar_paths(val):  # the val shard's memory maps are gone
        path.unlink()
    results = both_engines(root, vid)
    failing = {(r.suite, f["kwargs"].get("column") or f["kwargs"].get("column_B")) for _, r, _ in results
               for f in r.failures}
    assert {("qa.rows", "max_token"), ("qa.rows", "id"), ("qa.rows", "sidecar_n_tokens"),
            ("qa.rows", "token_count")} <= failing


def test_validate_version_agrees_on_a_schema_change_and_an_unreadable_shard(tmp_path, tokenizer_path):
    root = tmp_path / "data"
    src = write_jsonl(tmp_path / "in" / "qa.jsonl", qa_records(120))
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), "--target-field", "answer", "--id-field", "id",
                 "--val-ratio", "0.2", "--max-seq-len", "128") == 0
    vid = the_version(root)
    catalog = Catalog(root)
    train, val = (root / catalog.shards(vid, split)[0]["path"] for split in ("train", "val"))
    table = pq.read_table(train)
    table = table.append_column("extra", pa.array(["x"] * table.num_rows))  # one column too many
    pq.write_table(table.cast(table.schema.set(table.schema.get_field_index("tier"), pa.field("tier", pa.int32()))),
                   train)
    val.write_bytes(val.read_bytes()[:64])
    results = both_engines(root, vid)
    assert not any(r.success for _, r, _ in results if r.suite in ("shard.schema", "version.rows"))


# -- the build's validation path stays light ------------------------------------------------------

def test_the_build_validation_path_imports_neither_gx_nor_pandas(qa_root):
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "import corpus.quality.validate, corpus.quality.suites, corpus.quality.facts, corpus.publish\n"
        "from corpus.catalog import Catalog\n"
        f"root = Path({str(qa_root)!r})\n"
        "catalog = Catalog(root)\n"
        "vid = catalog.query('SELECT id FROM versions')[0][0]\n"
        "outcome = corpus.quality.validate.validate_version(catalog, root, vid, write=False)\n"
        "assert outcome.success and outcome.engine == 'native', outcome.failures()\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('great_expectations', 'pandas'))\n"
        "print(heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_engine_that_decided_is_recorded(qa_root, tmp_path, capsys):
    """A build publishes with the native engine; check re-validates with GX unless told otherwise."""
    from corpus.quality.__main__ import main as quality_main
    from corpus.quality.report import select_versions, summary_markdown

    root = tmp_path / "data"
    shutil.copytree(qa_root, root)
    catalog = Catalog(root)
    engines_used = lambda: {e for (e,) in catalog.query("SELECT DISTINCT engine FROM validations")}  # noqa: E731
    assert engines_used() == {"native"}
    built = {r["suite"]: json.loads((root / r["report_path"]).read_text())
             for r in catalog.query_dicts("SELECT suite, report_path FROM validations")}
    assert quality_main(["check", "--data-dir", str(root)]) == 0
    assert "1 of 1 versions pass (gx engine)" in capsys.readouterr().out
    assert engines_used() == {"gx"}
    checked = {r["suite"]: json.loads((root / r["report_path"]).read_text())
               for r in catalog.query_dicts("SELECT suite, report_path FROM validations")}
    assert {s: normalized(r) for s, r in built.items()} == {s: normalized(r) for s, r in checked.items()}
    assert quality_main(["check", "--engine", "native", "--data-dir", str(root)]) == 0
    assert "(native engine)" in capsys.readouterr().out and engines_used() == {"native"}
    markdown, ok = summary_markdown(catalog, root, select_versions(catalog), None)
    assert ok and "passed, 0 failed. Engine: native." in markdown


def test_facts_database_survives_forked_children(qa_root):
    """Facts keep one in-memory DuckDB per process; a forked child (a build or DataLoader worker)
    must open its own and leave its parent's alone: freeing it there crashed the child."""
    code = (
        "import multiprocessing\n"
        "from pathlib import Path\n"
        "from corpus.catalog import Catalog\n"
        "from corpus.quality import facts\n"
        f"root = Path({str(qa_root)!r})\n"
        "path = root / Catalog(root).query('SELECT path FROM shards')[0][0]\n"
        "assert facts.shard_facts(path).rows['json_ok'].all()  # the parent's database exists\n"
        "def child():  # DuckDB only: polars' thread pool is not fork-safe whatever we do\n"
        "    con = facts._memory_db().cursor()\n"
        "    assert con.execute('SELECT 42').fetchall() == [(42,)]\n"
        "def idle():\n"
        "    pass\n"
        "ctx = multiprocessing.get_context('fork')\n"
        "for target in (idle, child):\n"
        "    p = ctx.Process(target=target)\n"
        "    p.start()\n"
        "    p.join(60)\n"
        "    assert p.exitcode == 0, (target.__name__, p.exitcode)\n"
        "assert facts.shard_facts(path).rows['json_ok'].all()  # and the parent's still works\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=180,
                          env={**__import__("os").environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
