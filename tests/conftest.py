"""Test-wide settings: offline hub, private caches, small thread counts, shared-data location, and
hermetic runs: a temporary data root and working directory, so the working tree's data/ and runs/
are never read or written and `make demo` before or after `make test` changes nothing."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("HF_DATASETS_CACHE", tempfile.mkdtemp(prefix="hrm-hf-cache-"))
os.environ["HRM_CACHE"] = tempfile.mkdtemp(prefix="hrm-test-cache-")  # s3:// working roots, object cache
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
os.environ.setdefault("HRM_CATALOG_TIMEOUT", "60")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

# Hermetic: the default data root of every command (and of every subprocess, which inherits the
# environment) is an empty temporary directory, never the working tree's data/ that `make demo`
# fills, nor a data root the user's own HRM_DATA_DIR points at.
os.environ["HRM_DATA_DIR"] = tempfile.mkdtemp(prefix="hrm-test-data-")
WORKING_TREE_OUTPUTS = ("data", "runs")  # what `make demo` writes; no test may touch them


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under the working tree's outputs with (mtime_ns, size)."""
    out = {}
    for name in WORKING_TREE_OUTPUTS:
        top = root / name
        if not top.exists():
            continue
        for path in [top, *top.rglob("*")]:
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue
            out[str(path.relative_to(root))] = (st.st_mtime_ns, st.st_size)
    return out


def _touched(before: dict, after: dict) -> str:
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    more = f" (+{len(changed) - 5} more)" if len(changed) > 5 else ""
    return f"touched the working tree's {' or '.join(WORKING_TREE_OUTPUTS)}: {', '.join(changed[:5])}{more}"


_baseline: dict[str, dict] = {}  # the outputs' state after the last check


@pytest.fixture(scope="session", autouse=True)
def _hermetic_session(tmp_path_factory):
    """The whole session runs in a temporary directory: relative defaults (``runs``) land there,
    also for module fixtures."""
    home = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    _baseline["outputs"] = _snapshot(REPO)
    yield
    os.chdir(home)


@pytest.fixture(autouse=True)
def _hermetic(_hermetic_session):
    """Fails the test whose fixtures or body created, changed or removed anything in the working
    tree's data/ or runs/ (each change is reported once)."""
    now = _snapshot(REPO)
    if now != _baseline["outputs"]:
        before, _baseline["outputs"] = _baseline["outputs"], now
        pytest.fail(f"the fixtures of this test {_touched(before, now)}", pytrace=False)
    yield
    after = _snapshot(REPO)
    if after != now:
        _baseline["outputs"] = after
        pytest.fail(f"this test {_touched(now, after)}", pytrace=False)


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or a skip (with the reason) when it is not there."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (absent on a fresh clone)")
    return path
