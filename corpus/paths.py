"""Where things live on disk (DESIGN §3). One root, overridable by flag or HRM_DATA_DIR.

A root may be ``s3://bucket/prefix`` (docs/storage.md): it is worked on through a local working
root (:mod:`corpus.storage.roots`), so everything below keeps taking a local directory."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "HRM_DATA_DIR"


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """The data root: an explicit path, else $HRM_DATA_DIR, else ./data; for an ``s3://`` root,
    its local working root, made ready on this node."""
    text = str(explicit) if explicit else os.environ.get(DATA_DIR_ENV) or "data"
    if text.startswith("s3://"):
        from corpus.storage.roots import prepare

        return prepare(text)
    return Path(text)


def catalog_path(root: Path) -> Path:
    return root / "catalog.duckdb"


def tokenizer_dir(root: Path) -> Path:
    return root / "tokenizers"


def version_dir(root: Path, source: str, version: str) -> Path:
    return root / "shards" / safe_name(source) / version


def quarantine_path(root: Path, source: str, version: str) -> Path:
    return root / "quarantine" / safe_name(source) / f"{version}.parquet"


def mixes_dir(root: Path) -> Path:
    return root / "mixes"


def reports_dir(root: Path) -> Path:
    return root / "reports"


def safe_name(source: str) -> str:
    """Source names like ``synthetic:arith`` become directory-safe (``synthetic-arith``)."""
    return source.replace(":", "-").replace("/", "-")
