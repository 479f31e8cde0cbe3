"""Issue 14 item 1b: hub inputs are content-addressed (a resolved commit, or a local dataset
repository's split files), and a source's version ids depend on its own code only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.hub import resolve_hub
from tests.sources.helpers import build, rows_of

REPO = Path(__file__).resolve().parents[2]
GOOD = [{"question": f"Kim reads {i} pages and then {i + 3} more. How many pages?",
         "answer": f"Kim reads {i} + {i + 3} = {2 * i + 3} pages.\n#### {2 * i + 3}"} for i in range(40)]


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "gsm8k-mirror"
    (repo / "main").mkdir(parents=True)
    (repo / "README.md").write_text("a local dataset repository (clone of a hub dataset)\n")
    (repo / "main" / "train-00000-of-00001.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD))
    (repo / "main" / "test-00000-of-00001.jsonl").write_text(json.dumps(GOOD[0]) + "\n")
    return repo


def test_a_local_dataset_repository_whose_files_change_gets_a_new_version(tmp_path, tokenizer_path):
    repo = _repo(tmp_path)
    root = tmp_path / "data"
    assert build(root, tokenizer_path, "gsm8k", "--hub-dataset", str(repo)) == 0
    train = repo / "main" / "train-00000-of-00001.jsonl"
    stat = train.stat()
    text = train.read_text()
    new = text.replace('#### 11"', '#### 99"')
    assert new != text and len(new) == len(text)
    train.write_text(new)  # same size, mtime kept
    os.utime(train, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert build(root, tokenizer_path, "gsm8k", "--hub-dataset", str(repo)) == 0
    versions = Catalog(root).query_dicts("SELECT id, config, rows FROM versions ORDER BY created_at")
    assert len(versions) == 2 and versions[0]["id"] != versions[1]["id"]
    config = json.loads(versions[1]["config"])
    assert config["hub"] == {"dataset": str(repo), "revision": "content"}
    targets = sorted(r["target"] for r in rows_of(root, versions[1]["id"]))
    assert targets == sorted(json.loads(line)["answer"] for line in train.read_text().splitlines())
    assert versions[1]["rows"] == len(GOOD)  # only the train split's files were read


def test_hub_ids_resolve_to_a_commit_pinned_by_revision_or_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert resolve_hub("openai/gsm8k", "train", None).revision is None  # no cache entry: the read fails later
    refs = tmp_path / "hub" / "datasets--openai--gsm8k" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    assert resolve_hub("openai/gsm8k", "train", None).revision == "a" * 40
    (refs / "main").write_text("b" * 40)  # upstream moved: the cache now points elsewhere
    assert resolve_hub("openai/gsm8k", "train", None).revision == "b" * 40
    (refs / "v1.0").write_text("c" * 40)
    assert resolve_hub("openai/gsm8k", "train", "v1.0").revision == "c" * 40
    assert resolve_hub("openai/gsm8k", "train", "d" * 40).revision == "d" * 40
    with pytest.raises(UserError, match="--revision applies to hub datasets"):
        resolve_hub(str(tmp_path), "train", "main")


def test_the_revision_enters_the_version_id_and_the_catalog(tmp_path, tokenizer_path, capsys, monkeypatch):
    """Offline with a pinned commit the read itself fails (nothing cached), but the printed hub
    error names the commit it tried, so the id was computed over it."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert build(tmp_path / "data", tokenizer_path, "gsm8k", "--revision", "e" * 40) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot load openai/gsm8k split train from the hub") and err.count("\n") == 1
    from corpus.versioning import input_fingerprint

    assert input_fingerprint(None, "hub:openai/gsm8k:main:train@" + "a" * 40) != \
        input_fingerprint(None, "hub:openai/gsm8k:main:train@" + "b" * 40)


def _code_versions(tree: Path) -> dict:
    script = ("import json; from corpus.sources import get_source; from corpus.versioning import code_version; "
              "print(json.dumps({n: code_version(get_source(n)) for n in "
              "['gsm8k', 'mbpp', 'wiki', 'synthetic:arith', 'synthetic:linear']}))")
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(tree)},
                         capture_output=True, text=True, check=True, cwd=tree)
    return json.loads(out.stdout)


def test_editing_one_source_changes_only_its_own_version_ids(tmp_path):
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "corpus", tree / "corpus", ignore=shutil.ignore_patterns("__pycache__"))
    before = _code_versions(tree)
    with open(tree / "corpus" / "sources" / "mbpp.py", "a") as f:
        f.write("\n# an edit to the MBPP source only\n")
    with open(tree / "corpus" / "synthetic" / "arithmetic.py", "a") as f:
        f.write("\n# an edit to one generator\n")
    after = _code_versions(tree)
    assert {n for n in before if before[n] != after[n]} == {"mbpp", "synthetic:arith"}
    with open(tree / "corpus" / "rows.py", "a") as f:
        f.write("\n# shared row code\n")
    shared = _code_versions(tree)
    assert all(shared[n] != after[n] for n in after)  # the shared row code changes every source
