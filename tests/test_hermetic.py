"""The test session is hermetic: defaults never resolve into the working tree, and the guard in
tests/conftest.py sees any change under a data/ or runs/ directory."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import REPO, _snapshot, _touched


def test_defaults_resolve_outside_the_working_tree():
    from corpus.paths import data_root

    root = data_root().resolve()
    assert REPO.resolve() not in (root, *root.parents)  # $HRM_DATA_DIR: a temporary directory
    cwd = Path(os.getcwd()).resolve()
    assert REPO.resolve() not in (cwd, *cwd.parents)  # relative defaults (runs/) land in a temp dir


def test_the_guard_sees_a_file_added_changed_or_removed(tmp_path):
    (tmp_path / "data" / "shards").mkdir(parents=True)
    (tmp_path / "data" / "catalog.duckdb").write_bytes(b"x")
    before = _snapshot(tmp_path)
    assert set(before) == {"data", "data/shards", "data/catalog.duckdb"}
    assert _snapshot(tmp_path) == before  # reading changes nothing

    (tmp_path / "runs" / "demo").mkdir(parents=True)
    (tmp_path / "data" / "catalog.duckdb").write_bytes(b"xy")
    (tmp_path / "data" / "shards").rmdir()
    after = _snapshot(tmp_path)
    assert _touched(before, after) == ("touched the working tree's data or runs: data, data/catalog.duckdb, "
                                       "data/shards, runs, runs/demo")
