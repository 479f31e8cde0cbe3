"""``python -m corpus.verify``: re-hash every file the catalog registered and compare.

The ``files`` table lists every registered file (shards, sidecars, tokenizers, quarantine,
plans) with its size and sha256, relative to the data root. A missing file, a size that differs
(a truncated copy) or a checksum that differs (a flipped byte) is reported as one line naming
the file; any of them makes the exit status 1. With ``--data-dir s3://bucket/prefix`` the
objects in the bucket are checked instead (:mod:`corpus.storage.remote_verify`), each problem
one line naming the key. :func:`check_file` is the same check for one
file, for loaders that refuse to read a file the catalog does not vouch for.
"""

from __future__ import annotations

import argparse
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corpus.errors import UserError


def problem(root: Path, record: dict, hash_it: bool = True) -> str | None:
    """Why the file of ``record`` (a ``files`` row) does not match the catalog, or None."""
    from corpus.atomic import sha256_file

    rel = record["path"]
    path = Path(root) / rel
    if not path.is_file():
        return f"{rel}: missing (catalog: {record['bytes']} bytes, sha256 {record['sha256'][:12]}…)"
    size = path.stat().st_size
    if record["bytes"] is not None and size != record["bytes"]:
        return (f"{rel}: size {size} bytes, catalog {record['bytes']} bytes "
                f"({'truncated' if size < record['bytes'] else 'grown'})")
    if hash_it:
        digest = sha256_file(path)
        if digest != record["sha256"]:
            return f"{rel}: sha256 {digest[:12]}… does not match the catalog's {record['sha256'][:12]}… (corrupted)"
    return None


def check_file(root: Path, rel_path: str, catalog=None, hash_it: bool = True) -> None:
    """Raise :class:`UserError` (same message as ``corpus.verify``) unless ``rel_path`` matches its record.

    ``rel_path`` is relative to the data root, as in the catalog; ``hash_it=False`` checks only
    existence and size (cheap, e.g. on every open; the full hash once per process).
    """
    from corpus.catalog import Catalog

    catalog = catalog or Catalog(Path(root))
    record = catalog.file_record(str(rel_path))
    if record is None:
        raise UserError(f"{rel_path}: not registered in the catalog {catalog.path}")
    why = problem(Path(root), record, hash_it)
    if why:
        raise UserError(f"verify failed: {why}")


def verify(root: Path, catalog=None, roles: list[str] | None = None, versions: list[str] | None = None,
           workers: int | None = None, progress: bool = False) -> tuple[int, list[str]]:
    """Check every registered file (optionally only some roles/versions): (files checked, problems)."""
    from corpus.catalog import Catalog

    catalog = catalog or Catalog(Path(root))
    sql, params = "SELECT path, version, role, sha256, bytes FROM files WHERE true", []
    if roles:
        sql += f" AND role IN ({', '.join('?' for _ in roles)})"
        params += roles
    if versions:
        sql += f" AND version IN ({', '.join('?' for _ in versions)})"
        params += versions
    records = catalog.query_dicts(sql + " ORDER BY path", params, read_only=True)
    workers = workers or min(8, os.cpu_count() or 1)  # sha256 releases the GIL: threads hash in parallel
    problems: list[str] = []
    with _progress(progress) as bar, ThreadPoolExecutor(workers) as pool:
        task = bar.add_task("verifying", total=len(records))
        for why in pool.map(lambda r: problem(Path(root), r), records):
            if why:
                problems.append(why)
            bar.update(task, advance=1)
    return len(records), problems


def _progress(enabled: bool):
    from corpus.progress import progress

    return progress(enabled)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m corpus.verify", description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="data root (default: $HRM_DATA_DIR or ./data)")
    parser.add_argument("--role", action="append", help="only files of this role (parquet, tokens, index, "
                        "tokenizer, quarantine, plan); repeatable")
    parser.add_argument("--version", action="append", help="only files of this version; repeatable")
    parser.add_argument("--workers", type=int, default=None, help="hashing threads")
    args = parser.parse_args(argv)

    from corpus.cli import run_cli

    def body() -> int:
        from corpus.catalog import Catalog
        from corpus.paths import data_root

        from corpus.flags import check_range

        check_range("--workers", args.workers, 1, 1024)
        root = data_root(args.data_dir)
        catalog = Catalog(root)
        if not catalog.path.exists():
            raise UserError(f"no catalog at {catalog.path}: nothing to verify")
        from corpus.storage import remote_of

        remote = remote_of(root)
        if remote is not None:  # an s3:// root: the objects in the bucket are the data (docs/storage.md)
            from corpus.storage.remote_verify import verify_remote

            checked, problems = verify_remote(catalog, remote, args.version, args.workers or 8, args.role)
            what = f"objects in {remote.url}"
        else:
            checked, problems = verify(root, catalog, args.role, args.version, args.workers, sys.stderr.isatty())
            what = "registered files"
        for why in problems:
            print(f"verify failed: {why}", file=sys.stderr)
        print(f"{checked - len(problems)} of {checked} {what} match the catalog")
        return 1 if problems else 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
