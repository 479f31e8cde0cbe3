"""Issue 22: manifest numbers are range-checked before anything is built, allocated or written:
one line naming the file and the field, never a traceback or a half-registered plan."""

from __future__ import annotations

import pytest

from corpus.errors import UserError
from corpus.mixing.plan import make_plan
from tests.mixing.conftest import DATA, SOURCES
from tests.mixing.helpers import write_manifest

PLAIN = [{"name": s["name"], "weight": s["weight"]} for s in SOURCES]


@pytest.mark.parametrize("key, value, says", [
    ("max_seq_len", 1e12, "max_seq_len"),
    ("seed", 1e20, "seed"),
    ("train_samples", 1e15, "train_samples"),
    ("train_samples", 1_000_000_000, "needs about"),  # fits the column, not this machine's memory
])
def test_out_of_range_numbers_are_one_line_and_nothing_is_written(tmp_path, key, value, says):
    root = tmp_path / "data"
    root.mkdir()
    manifest = write_manifest(tmp_path / "big.toml", {**DATA, key: value}, PLAIN)
    with pytest.raises(UserError) as exc:
        make_plan(manifest, root, log=lambda m: None)
    message = str(exc.value)
    assert "\n" not in message and says in message and "big.toml" in message, message
    assert list(root.iterdir()) == []  # no tokenizer trained, no source built, no plan file
