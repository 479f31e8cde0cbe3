"""Issue 22: a data root's tokenizer copy replaced by another *valid* tokenizer is named as the
damaged file, by a build (which refuses to publish on top of it) and by a mix (which used to
blame the manifest), and nothing new is registered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.catalog import Catalog
from corpus.errors import UserError
from corpus.tokenizer import load_tokenizer, train_tokenizer
from tests.conftest import shared
from tests.foundation.helpers import REPO


def _build(root: Path, tokenizer: Path, src: Path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "corpus.build", "gsm8k", "--from", str(src), "--tokenizer",
                           str(tokenizer), "--data-dir", str(root), "--quiet", *extra],
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=300)


def test_a_replaced_tokenizer_copy_is_named_as_damaged(tmp_path, tokenizer_path):
    root = tmp_path / "data"
    built = _build(root, tokenizer_path, shared("gsm8k", "train_sample.jsonl"))
    assert built.returncode == 0, built.stderr[-2000:]
    sha = load_tokenizer(tokenizer_path).sha256
    copy = root / "tokenizers" / f"{sha}.json"
    other = train_tokenizer([f"word{i} and word{i + 1}" for i in range(300)], vocab_size=300)
    other.save(str(copy))  # valid JSON, a real tokenizer: just not this one
    versions = Catalog(root).query("SELECT id FROM versions")

    again = _build(root, tokenizer_path, shared("gsm8k", "test.jsonl"), "--split", "test")
    assert again.returncode == 2 and again.stderr.count("\n") == 1, again.stderr[-2000:]
    assert f"{copy}: damaged" in again.stderr
    assert Catalog(root).query("SELECT id FROM versions") == versions  # nothing published on top

    from corpus.mixing.plan import make_plan
    from tests.mixing.helpers import write_manifest

    manifest = write_manifest(tmp_path / "mix.toml", {"tokenizer": f"tokenizers/{sha}.json", "max_seq_len": 256,
                                                      "train_samples": 50, "seed": 0},
                              [{"name": "gsm8k", "weight": 1.0}])
    with pytest.raises(UserError) as exc:
        make_plan(manifest, root, build_missing=False, log=lambda m: None)
    message = str(exc.value)
    assert "\n" not in message and f"{copy}: damaged" in message, message
    assert not (root / "mixes").exists() or not any((root / "mixes").rglob("plan-*.parquet"))
