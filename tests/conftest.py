"""Test-wide settings: offline hub, private caches, small thread counts, shared-data location."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="hrm-hf-cache-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
os.environ.setdefault("HRM_CATALOG_TIMEOUT", "60")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or a skip (with the reason) when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (absent on a fresh clone)")
    return path
