"""corpus.verify: a flipped byte or a truncated file is caught and named; check_file says the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.verify import check_file, main as verify_main
from tests.quality.conftest import copy_root


def flip_byte(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def registered(root: Path, role: str) -> str:
    return Catalog(root).query("SELECT path FROM files WHERE role = ? ORDER BY path", [role])[0][0]


def test_clean_root_verifies(qa_root, capsys):
    assert verify_main(["--data-dir", str(qa_root)]) == 0
    n = Catalog(qa_root).query("SELECT count(*) FROM files")[0][0]
    assert f"{n} of {n} registered files match the catalog" in capsys.readouterr().out


@pytest.mark.parametrize("role", ["parquet", "tokens", "index", "tokenizer"])
def test_flipped_byte_is_named(qa_root, tmp_path, capsys, role):
    root = copy_root(qa_root, tmp_path / "data")
    rel = registered(root, role)
    flip_byte(root / rel)
    assert verify_main(["--data-dir", str(root)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"verify failed: {rel}: sha256 " + err[0].split(": sha256 ")[1]]
    assert "does not match the catalog" in err[0]
    with pytest.raises(UserError) as info:
        check_file(root, rel)
    assert str(info.value) == err[0]


def test_truncated_and_missing_files(qa_root, tmp_path, capsys):
    root = copy_root(qa_root, tmp_path / "data")
    shard = registered(root, "parquet")
    sidecar = registered(root, "tokens")
    (root / shard).write_bytes((root / shard).read_bytes()[:-10])
    (root / sidecar).unlink()
    assert verify_main(["--data-dir", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"verify failed: {shard}: size" in err and "(truncated)" in err
    assert f"verify failed: {sidecar}: missing" in err
    with pytest.raises(UserError, match=r"truncated"):
        check_file(root, shard, hash_it=False)  # the cheap check (size) already refuses it
    with pytest.raises(UserError, match="not registered"):
        check_file(root, "shards/nowhere.parquet")


def test_only_some_roles(qa_root, tmp_path):
    root = copy_root(qa_root, tmp_path / "data")
    flip_byte(root / registered(root, "tokenizer"))
    assert verify_main(["--data-dir", str(root), "--role", "parquet", "--role", "index"]) == 0
    assert verify_main(["--data-dir", str(root), "--role", "tokenizer"]) == 1
