"""Issue 22: one writer per plan directory. A second ``corpus.mix`` computing a plan while
another holds its directory is refused in one line naming the holder's pid."""

from __future__ import annotations

import os

import pytest

from corpus.dirlock import hold
from corpus.errors import UserError
from tests.mixing.conftest import DATA, SOURCES
from tests.mixing.helpers import write_manifest


def test_a_second_writer_of_a_plan_directory_is_refused(mix_root, tmp_path):
    from corpus.mixing.plan import make_plan

    plain = [{"name": s["name"], "weight": s["weight"]} for s in SOURCES]
    manifest = write_manifest(tmp_path / "locked.toml", {**DATA, "seed": 7}, plain)
    first = make_plan(manifest, mix_root, log=lambda m: None)
    before = {p.name: p.stat().st_mtime_ns for p in first.dir.iterdir() if p.name != ".lock"}
    lock = hold(first.dir, "plan directory")  # another writer, as far as flock can tell
    try:
        with pytest.raises(UserError) as exc:
            make_plan(manifest, mix_root, force=True, log=lambda m: None)
    finally:
        lock.release()
    message = str(exc.value)
    assert "\n" not in message and f"in use by pid {os.getpid()}" in message and str(first.dir) in message
    assert {p.name: p.stat().st_mtime_ns for p in first.dir.iterdir() if p.name != ".lock"} == before  # nothing written
    (first.dir / ".plan-train.parquet.tmp-4242").write_bytes(b"half")  # a killed writer's leftover
    again = make_plan(manifest, mix_root, force=True, log=lambda m: None)
    assert again.id == first.id and not (first.dir / ".plan-train.parquet.tmp-4242").exists()
