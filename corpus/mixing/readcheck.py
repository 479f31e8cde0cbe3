"""Read-path integrity: a reader hashes each shard file against the catalog the first time this
process maps it, so a flipped byte in ``tokens.npy`` or ``index.npy`` is one line naming the
file, not a model trained on it.

``corpus.verify`` checks everything on demand; this checks exactly what a reader opens, once
per process and file (keyed by path, size, mtime and inode, so a replaced file is hashed
again). The cost is one sequential read of each opened file — measured in bench/reader.py
(BENCHMARKS.md, "Read-path checks"). ``HRM_READ_CHECKS=0`` switches it off (the benchmark's
"off" side; never needed in normal use).
"""

from __future__ import annotations

import os
from pathlib import Path

from corpus.errors import UserError

ENV = "HRM_READ_CHECKS"
_VERIFIED: set[tuple] = set()


def enabled() -> bool:
    return os.environ.get(ENV, "1") != "0"


def forget() -> None:
    """Forget what this process verified (the benchmark measures a fresh process this way)."""
    _VERIFIED.clear()


def fast_digests(con, versions: list[str]) -> dict[str, str]:
    """path → xxh3 of the versions' shard files (none for catalogs built before they existed)."""
    import duckdb

    marks = ", ".join("?" * len(versions))
    try:
        return dict(con.execute(f"SELECT c.path, c.xxh3 FROM file_checksums c JOIN files f USING (path) "
                                f"WHERE f.version IN ({marks})", versions).fetchall())
    except duckdb.CatalogException:  # not migrated yet (readers open the catalog read-only)
        return {}


def check_once(root: Path, record: dict, rebuild_hint: str, xxh3: str | None = None) -> None:
    """Raise one line unless the file of ``record`` (a catalog ``files`` row) matches it: its
    xxh3 when the catalog has one, else its sha256."""
    from corpus.atomic import sha256_file, xxh3_file

    path = Path(root) / record["path"]
    try:
        st = path.stat()
    except OSError:
        raise UserError(f"{record['path']}: missing; {rebuild_hint}") from None
    key = (str(path), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _VERIFIED:
        return
    if record["bytes"] is not None and st.st_size != record["bytes"]:
        raise UserError(f"{record['path']}: damaged (size {st.st_size} bytes, catalog {record['bytes']}); "
                        f"{rebuild_hint}")
    if (xxh3_file(path) != xxh3) if xxh3 else (sha256_file(path) != record["sha256"]):
        raise UserError(f"{record['path']}: damaged ({'xxh3' if xxh3 else 'sha256'} does not match the catalog); "
                        f"{rebuild_hint}")
    _VERIFIED.add(key)


def shard_checker(root: Path, shard_files: list[dict], components: list[dict], digests: dict[str, str] | None = None):
    """A function ``check(parquet_path)`` verifying a shard's sidecars (and, via ``ids``, its
    Parquet) on first open; a no-op when switched off."""
    if not enabled():
        return lambda parquet, parts=("tokens", "index"): None
    by_path = {str(Path(root) / f["path"]): f for f in shard_files}
    source_of = {c["version"]: c["source"] for c in components}

    def check(parquet: Path, parts: tuple[str, ...] = ("tokens", "index")) -> None:
        from corpus.shards import sidecar_paths

        tokens, index = sidecar_paths(Path(parquet))
        files = {"tokens": tokens, "index": index, "parquet": Path(parquet)}
        for part in parts:
            record = by_path.get(str(files[part]))
            if record is None:
                raise UserError(f"{files[part]}: not registered in the catalog; rebuild its version")
            source = source_of.get(record["version"], "<source>")
            check_once(root, record, f"rebuild it: python -m corpus.build {source} <same inputs> --rebuild "
                                     f"(version {record['version']}; python -m corpus.verify lists every damaged file)",
                       (digests or {}).get(record["path"]))
    return check


def check_registered(root: Path, path: Path) -> None:
    """:func:`check_once` for one file by path (a reader outside ``open_plan``: evaluation sets,
    the mixer's tier column), looking its record and digest up in the catalog."""
    if not enabled():
        return
    from corpus.catalog import Catalog

    rel = str(Path(path).resolve().relative_to(Path(root).resolve()))
    with Catalog(Path(root)).connect(read_only=True) as con:
        cur = con.execute("SELECT * FROM files WHERE path = ?", [rel])
        row = cur.fetchone()
        record = dict(zip([d[0] for d in cur.description], row)) if row else None
        digests = fast_digests(con, [record["version"]]) if record else {}
    if record is None:
        raise UserError(f"{rel}: not registered in the catalog; rebuild its version")
    check_once(root, record, f"rebuild it with python -m corpus.build ... --rebuild (version {record['version']}; "
                             f"python -m corpus.verify lists every damaged file)", digests.get(rel))
