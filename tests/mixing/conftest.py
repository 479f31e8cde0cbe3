"""Fixtures: one real data root with a tokenizer and three synthetic sources, built once.

The session root is built through the mixer itself (``[data.tokenizer_train]`` + ``build``
tables), so the "fresh machine" path is exercised; later manifests reuse its versions.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.mixing.helpers import write_manifest

os.environ.setdefault("RAYON_NUM_THREADS", "2")

SOURCES = [
    {"name": "synthetic:arith", "weight": 0.4, "build": {"count": 1200, "tiers": "0-3", "max_bad_ratio": 0.1,
                                                         "threads": 1}},
    {"name": "synthetic:lists", "weight": 0.35, "build": {"count": 700, "tiers": "0-1", "max_bad_ratio": 0.1,
                                                          "threads": 1}},
    {"name": "synthetic:counting", "weight": 0.25, "build": {"count": 500, "tiers": "0-1",
                                                             "max_bad_ratio": 0.1, "threads": 1}},
]
DATA = {"tokenizer": "tokenizers/test-1k.json", "max_seq_len": 256, "train_samples": 6000, "val_samples": 300,
        "seed": 0, "window": 500, "tokenizer_train": {"vocab_size": 1024, "synthetic": 2400}}


@pytest.fixture(scope="session")
def mix_root(tmp_path_factory) -> Path:
    """A data root holding the tokenizer, three published synthetic versions and one plan."""
    from corpus.mixing.plan import make_plan

    root = tmp_path_factory.mktemp("mixdata")
    manifest = write_manifest(root.parent / "base.toml", DATA, SOURCES)
    make_plan(manifest, root, log=lambda m: None)
    return root


@pytest.fixture
def manifest_dir(tmp_path) -> Path:
    return tmp_path
