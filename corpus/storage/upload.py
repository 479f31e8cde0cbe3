"""Publishing a finished version (or plan) of a working root to its remote root.

Order is the contract: every object first (content-addressed keys: an object is written once
and a re-upload of the same bytes is skipped), then the version's manifest, then the catalog's
``remote_versions`` row, then the catalog's read-only copy in the bucket. An upload interrupted
anywhere before the manifest leaves nothing registered (only unreferenced objects, which the
next attempt reuses); running the build or the mix again completes it.
"""

from __future__ import annotations

import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from corpus.errors import UserError
from corpus.storage.remote import RemoteRoot, filesystem, remote_error
from corpus.storage.roots import is_snapshot, remote_of

UPLOAD_THREADS = 8  # object stores reward parallel requests; each put is I/O-bound


@dataclass(frozen=True)
class RemoteUpload:
    """What :func:`publish_remote` did: the manifest's key, files listed, objects sent, bytes sent."""

    manifest_key: str
    files: int
    uploaded: int
    bytes: int
    already: bool = False


def files_of(catalog, version: str) -> list[dict]:
    """The registered files a version or plan needs: its own, plus its tokenizer's."""
    rows = catalog.query_dicts("SELECT path, role, sha256, bytes FROM files WHERE version = ? ORDER BY path", [version])
    sha = catalog.query("SELECT tokenizer_sha FROM versions WHERE id = ? UNION ALL "
                        "SELECT tokenizer_sha FROM mixes WHERE id = ?", [version, version])
    if sha and sha[0][0]:
        rows += catalog.query_dicts("SELECT path, role, sha256, bytes FROM files WHERE role = 'tokenizer' "
                                    "AND starts_with(path, ?) ORDER BY path", [f"tokenizers/{sha[0][0]}"])
    return rows


def publish_remote(root: Path, catalog, version: str, extra: list[Path] = (), quiet: bool = False) -> RemoteUpload | None:
    """Upload ``version``'s files, then its manifest, then register it; None for a local root.

    ``extra``: more files under ``root`` a reader on another node needs (a mix manifest's own
    tokenizer file), listed in the manifest with role ``extra``.
    """
    remote = remote_of(root)
    if remote is None:
        return None
    key = remote.manifest_key(version)
    done = catalog.query("SELECT files FROM remote_versions WHERE remote = ? AND version = ?", [remote.url, version])
    if done:
        return RemoteUpload(key, int(done[0][0]), 0, 0, already=True)
    if is_snapshot(root):
        raise UserError(f"{root} reads a copy of the catalog of {remote.url}: build and plan on the driver "
                        f"(the node whose catalog it is; docs/storage.md), not here")
    entries = [dict(r) for r in files_of(catalog, version)] + _extras(root, extra)
    if not entries:
        raise UserError(f"{version}: no registered files to upload to {remote.url}")
    fs = filesystem()
    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        sent = [n for n in pool.map(lambda e: _put(fs, remote, root, e), entries)]
    manifest = json.dumps({"version": version, "remote": remote.url, "files": entries}, sort_keys=True, indent=1)
    try:
        fs.pipe_file(key, manifest.encode())  # last: a manifest in the bucket means every object is there
    except Exception as exc:  # noqa: BLE001
        raise remote_error(f"s3://{key}", exc, f"nothing was registered on {remote.url}: run the build or mix "
                           f"again to complete the upload") from None
    with catalog.connect() as con:
        con.execute("INSERT INTO remote_versions VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [remote.url, version, key, manifest, len(entries), sum(int(e["bytes"] or 0) for e in entries),
                     datetime.now(timezone.utc)])
    upload_catalog(catalog, remote)
    result = RemoteUpload(key, len(entries), sum(1 for n in sent if n), sum(sent))
    if not quiet:
        print(f"uploaded {version} to {remote.url}: {result.files} files ({result.uploaded} new objects, "
              f"{result.bytes:,} bytes), manifest s3://{key}", file=sys.stderr)
    return result


def _extras(root: Path, extra) -> list[dict]:
    from corpus.atomic import sha256_file

    out = []
    for path in extra:
        path = Path(path)
        try:
            rel = str(path.resolve().relative_to(Path(root).resolve()))
        except ValueError:
            continue  # outside the data root: the reader names it itself
        if path.is_file():
            out.append({"path": rel, "role": "extra", "sha256": sha256_file(path), "bytes": path.stat().st_size})
    return out


def _put(fs, remote: RemoteRoot, root: Path, entry: dict) -> int:
    """Upload one file under its content key unless the bucket has it; bytes sent."""
    from corpus.atomic import sha256_file

    key = remote.object_key(entry["sha256"])
    local = Path(root) / entry["path"]
    try:
        if fs.exists(key) and fs.info(key)["size"] == entry["bytes"]:
            return 0
    except Exception as exc:  # noqa: BLE001
        raise remote_error(f"s3://{key}", exc, f"nothing was registered on {remote.url}") from None
    if not local.is_file():
        raise UserError(f"{local}: missing, cannot upload it to s3://{key}; nothing was registered on {remote.url} "
                        f"(rebuild with --rebuild)")
    if sha256_file(local) != entry["sha256"]:  # never store wrong bytes under a content key
        raise UserError(f"{local}: sha256 differs from the catalog, not uploaded to {remote.url}; nothing was "
                        f"registered there (python -m corpus.verify; rebuild with --rebuild)")
    try:
        fs.put_file(str(local), key)
    except Exception as exc:  # noqa: BLE001
        raise remote_error(f"s3://{key} (uploading {entry['path']})", exc,
                           f"nothing was registered on {remote.url}: run the build or mix again to complete "
                           f"the upload") from None
    return int(entry["bytes"])


def upload_catalog(catalog, remote: RemoteRoot) -> None:
    """The driver's catalog, checkpointed and copied under its lock, then put in the bucket for
    other nodes (a read-only copy: they never write it back)."""
    tmp = catalog.path.with_name(f".{catalog.path.name}.upload")
    with catalog.connect() as con:
        con.execute("CHECKPOINT")
        shutil.copyfile(catalog.path, tmp)
    try:
        filesystem().put_file(str(tmp), remote.catalog_key())
    except Exception as exc:  # noqa: BLE001
        raise remote_error(f"s3://{remote.catalog_key()}", exc) from None
    finally:
        tmp.unlink(missing_ok=True)
