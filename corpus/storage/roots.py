"""The local working root of a remote root, and what makes a node ready to read it.

``s3://bucket/prefix`` is worked on through ``$HRM_CACHE/roots/<bucket>/<prefix>`` (default
``~/.cache/hrm-corpus``): builds stage and register there, readers link fetched files there, so
every module that takes a data root keeps taking a local directory. A marker file,
``.remote.json``, names the remote root, so any process given the working root (a loader
worker, a subprocess) knows where its data lives.

The catalog: on the driver (the node that builds and plans: the one writer) the working root's
``catalog.duckdb`` is the catalog. Every other node holds a read-only copy pulled from
``<prefix>/catalog.duckdb`` (marked by ``.catalog-snapshot``, refreshed when the copy in the
bucket changes), and then the small files its plans need (plan files, tokenizers).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from corpus.storage.remote import RemoteRoot, filesystem, remote_error

CACHE_ENV = "HRM_CACHE"
MARKER = ".remote.json"
SNAPSHOT = ".catalog-snapshot"
_PREPARED: dict[tuple[str, str], Path] = {}


def cache_dir() -> Path:
    """The node-local cache: ``$HRM_CACHE``, else ``~/.cache/hrm-corpus``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "hrm-corpus").expanduser()


def working_root(remote: RemoteRoot) -> Path:
    return cache_dir() / "roots" / remote.bucket / (remote.prefix or "_")


def remote_of(root: Path) -> RemoteRoot | None:
    """The remote root a working root stands for, or None for a plain local data root."""
    try:
        return RemoteRoot.parse(json.loads((Path(root) / MARKER).read_text())["url"])
    except FileNotFoundError:
        return None


def is_snapshot(root: Path) -> bool:
    """True on a node that reads a copy of the driver's catalog (it must not write to it)."""
    return (Path(root) / SNAPSHOT).exists()


def prepare(url: str) -> Path:
    """The working root of ``url``, made ready on this node (once per process)."""
    remote = RemoteRoot.parse(url)
    done = _PREPARED.get((remote.url, str(cache_dir())))
    if done is not None:
        return done
    root = working_root(remote)
    root.mkdir(parents=True, exist_ok=True)
    marker = root / MARKER
    if not marker.exists():
        from corpus.atomic import write_bytes_atomic

        write_bytes_atomic(marker, json.dumps({"url": remote.url}).encode())
    catalog = root / "catalog.duckdb"
    if not catalog.exists() or is_snapshot(root):  # not the driver: read the driver's copy
        if pull_catalog(remote, root):
            from corpus.storage.fetch import fetch_small_files

            fetch_small_files(root, remote)
    _PREPARED[(remote.url, str(cache_dir()))] = root
    return root


def pull_catalog(remote: RemoteRoot, root: Path) -> bool:
    """Copy the bucket's ``catalog.duckdb`` here when it changed; False when the bucket has none
    (a new root: this node becomes its driver)."""
    from corpus.atomic import atomic_path

    fs = filesystem()
    key = remote.catalog_key()
    try:
        info = fs.info(key)
    except FileNotFoundError:
        return False
    except Exception as exc:  # noqa: BLE001 - the store's own error, in one line
        raise remote_error(f"s3://{key}", exc) from None
    tag = str(info.get("ETag") or info.get("size"))
    mark = root / SNAPSHOT
    if mark.exists() and mark.read_text() == tag and (root / "catalog.duckdb").exists():
        return True
    with atomic_path(root / "catalog.duckdb") as tmp:
        try:
            fs.get_file(key, str(tmp))
        except Exception as exc:  # noqa: BLE001
            raise remote_error(f"s3://{key}", exc) from None
    from corpus.atomic import write_bytes_atomic

    write_bytes_atomic(mark, tag.encode())
    return True
