"""The two walks that trained on the wrong data without a word (issue 21), as a new user takes
them: from a project directory with the DEFAULT data root (``./data``, relative), the README's
commands in the README's order, each checked by what the plan *used* (version, window length,
row ids against the input files), not only by its exit code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared

REPO = Path(__file__).resolve().parents[2]


def sh(project: Path, module: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``python -m module args`` run from ``project`` with no --data-dir and no HRM_DATA_DIR."""
    env = {k: v for k, v in os.environ.items() if k != "HRM_DATA_DIR"}
    env.update(PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", RAYON_NUM_THREADS="1", COLUMNS="200")
    proc = subprocess.run([sys.executable, "-m", module, *args], cwd=project, env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                             f"{proc.stderr[-2000:]}")
    return proc


def catalog(project: Path, sql: str, params: list | None = None) -> list[dict]:
    from corpus.catalog import Catalog

    return Catalog(project / "data").query_dicts(sql, params or [])


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A project directory: manifests/ as shipped, a slice of WikiText-2 (seconds, not minutes),
    the stage B tokenizer in data/, and wiki built as the README's tour builds it (1024 windows)."""
    valid = shared("wikitext2", "valid.txt")
    root = tmp_path_factory.mktemp("project")
    shutil.copytree(REPO / "manifests", root / "manifests")
    lines = valid.read_text(encoding="utf-8").splitlines(keepends=True)
    (root / "wiki.txt").write_text("".join(lines[:900]), encoding="utf-8")
    sh(root, "corpus.tokenizer", "train", "--from", "wiki.txt", "--vocab-size", "512", "--out",
       "data/tokenizers/hrm.json")
    sh(root, "corpus.build", "wiki", "--from", "wiki.txt", "--max-seq-len", "1024", "--stride", "64",
       "--tokenizer", "data/tokenizers/hrm.json", "--quiet")
    return root


SMALL = ("--data.train_samples", "3000", "--data.val_samples", "0")  # a slice of WikiText: no val articles


def local_inputs() -> list[str]:
    return ["--from", f"gsm8k={shared('gsm8k', 'train_sample.jsonl')}",
            "--from", f"mbpp={shared('mbpp', 'mbpp.jsonl')}"]


def test_walk1_a_1024_wiki_is_not_latest_for_a_512_plan(project):
    wiki1024 = catalog(project, "SELECT id FROM versions WHERE source = 'wiki'")[0]["id"]
    # stage B at 512 over the 1024 windows: refused in one line naming the version and the build command
    refused = sh(project, "corpus.mix", "manifests/stageB.toml", *SMALL, *local_inputs(), check=False)
    assert refused.returncode == 2  # a UserError: one line, exit 2
    err = refused.stderr.strip()
    assert "\n" not in err, err
    assert f"data.sources[0] (wiki).version: the newest wiki version {wiki1024} is cut into 1024-token windows" in err
    assert "python -m corpus.build wiki --from <its inputs> --max-seq-len 512 --stride 64" in err
    assert not (project / "data" / "mixes").exists()  # refused before anything was planned

    # declared (--from wiki=...): the 512 version is built and used; no exported row lacks a target
    out = project / "out"
    done = sh(project, "corpus.mix", "manifests/stageB.toml", *SMALL, *local_inputs(), "--from", "wiki=wiki.txt",
              "--export-jsonl", str(out))
    used = {r["source"]: r for r in catalog(project, "SELECT k.source, k.version, k.chosen, v.config FROM "
                                                     "mix_components k JOIN versions v ON v.id = k.version")}
    assert used["wiki"]["version"] != wiki1024 and json.loads(used["wiki"]["config"])["max_seq_len"] == 512
    assert {r["chosen"] for r in used.values()} == {"declared"}
    assert f"wiki: {used['wiki']['version']} (built from the declaration, inputs " in done.stdout
    meta = json.loads((out / "meta.json").read_text())
    assert meta["empty_targets_filled_with_eos"] == {"train": 0, "val": 0}
    assert meta["max_seq_len"] == 512 and {s["name"]: s["version"] for s in meta["sources"]}["wiki"] == \
           used["wiki"]["version"]
    assert {s["chosen"] for s in meta["sources"]} == {"declared"}

    # pinned 1024 version with an explicit overlong policy: used as pinned, its cut targets refused
    # unless accepted, and then counted in the output, the plan and the SQL view
    text = (project / "manifests" / "stageB.toml").read_text()
    pinned = text.replace('name = "wiki"\n', f'name = "wiki"\nversion = "{wiki1024}"\noverlong = "truncate"\n')
    (project / "manifests" / "pinned.toml").write_text(pinned)
    refused = sh(project, "corpus.mix", "manifests/pinned.toml", *SMALL, *local_inputs(), check=False)
    assert refused.returncode == 2 and "(wiki).max_target_loss: " + wiki1024 in refused.stderr
    (project / "manifests" / "pinned.toml").write_text(pinned.replace('overlong = "truncate"\n',
                                                                      'overlong = "truncate"\nmax_target_loss = 1.0\n'))
    done = sh(project, "corpus.mix", "manifests/pinned.toml", *SMALL, *local_inputs())
    row = catalog(project, "SELECT o.* FROM mix_overlong o JOIN mixes m ON m.id = o.plan "
                           "WHERE m.name = 'pinned' AND o.split = 'train' AND o.source = 'wiki'")[0]
    assert row["cut_target_tokens"] > 0 and row["cut_positions"] > 0
    assert (f"wiki truncate: {row['skipped_rows']:,} rows skipped, {row['cut_positions']:,} positions cut, "
            f"{row['cut_target_tokens']:,} of {row['target_tokens']:,} target tokens cut, "
            f"{row['skipped_target_tokens']:,} in skipped rows") in done.stdout
    assert f"wiki: {wiki1024} (pinned in the manifest, inputs " in done.stdout


def test_walk1_readme_sql_runs_from_the_project_root(project):
    """Every ``python -m corpus.sql`` of the README, run as written: no --data-dir, ./data relative."""
    from tests.mixing.test_readme_sql import readme_queries

    plans = catalog(project, "SELECT id FROM mixes ORDER BY created_at")
    if not plans:
        sh(project, "corpus.mix", "manifests/stageB.toml", *SMALL, *local_inputs(), "--from", "wiki=wiki.txt")
        plans = catalog(project, "SELECT id FROM mixes ORDER BY created_at")
    plan_id = plans[0]["id"]
    queries = readme_queries()
    assert any("mix_range" in q for q in queries)
    for q in queries:
        proc = sh(project, "corpus.sql", q.replace("'p…'", f"'{plan_id}'"), "--json")
        rows = json.loads(proc.stdout)
        if "mix_range" in q:  # positions 120000..120031 exist only in the full plan: ask for ones this one has
            proc = sh(project, "corpus.sql", f"SELECT * FROM mix_range('{plan_id}', 100, 131) ORDER BY position",
                      "--json")
            rows = json.loads(proc.stdout)
            assert [r["position"] for r in rows] == list(range(100, 132))
            assert all(r["shard_path"] and (project / "data" / r["shard_path"]).is_file() for r in rows)
    n = json.loads(sh(project, "corpus.sql", "SELECT count(*) AS n FROM mix_positions WHERE plan = "
                                             f"'{plan_id}'", "--json").stdout)[0]["n"]
    assert n == 3000


def test_walk2_two_jsonl_files_give_two_versions_and_plans_of_their_own_rows(project):
    def write(name: str, prefix: str, count: int) -> Path:
        path = project / name
        path.write_text("".join(json.dumps({"id": f"{prefix}{i}", "q": f"{prefix} question {i} about {i * 7}",
                                            "a": f"answer {i * 3}"}) + "\n" for i in range(count)))
        return path

    first, second = write("earlier.jsonl", "e", 150), write("countpar.jsonl", "c", 120)

    def manifest(name: str, path: Path) -> Path:
        out = project / "manifests" / f"{name}.toml"
        out.write_text(f"""[run]
name = "{name}"

[data]
tokenizer = "tokenizers/hrm.json"
max_seq_len = 128
train_samples = 400
val_samples = 0

[[data.sources]]
name = "jsonl"
weight = 1.0
build = {{ from = ["{path}"], prompt_field = "q", target_field = "a", id_field = "id", val_ratio = 0 }}
""")
        return out

    plans = {}
    for name, path in (("earlier", first), ("countpar", second)):
        out = sh(project, "corpus.mix", str(manifest(name, path).relative_to(project)), "--json")
        plans[name] = json.loads(out.stdout)
    versions = {n: p["sources"][0]["version"] for n, p in plans.items()}
    assert versions["earlier"] != versions["countpar"] and plans["earlier"]["plan"] != plans["countpar"]["plan"]
    assert {p["sources"][0]["chosen"] for p in plans.values()} == {"declared"}
    # the rows each plan draws are its own file's, by id: every position, read through the plan reader
    from corpus.mixing import PlanReader, open_plan

    for name, path in (("earlier", first), ("countpar", second)):
        ids = {f"jsonl:{json.loads(line)['id']}" for line in path.read_text().splitlines()}
        plan = open_plan(project / "data", plans[name]["plan"])
        drawn = [sample.id for sample in PlanReader(plan, "train")]
        assert len(drawn) == 400 and set(drawn) == ids  # 400 draws cover each file's rows, and only them
    # the second manifest again: the same plan, never the other file's version
    again = json.loads(sh(project, "corpus.mix", "manifests/earlier.toml", "--json").stdout)
    assert again["plan"] == plans["earlier"]["plan"] and not again["created"]
