"""``corpus.verify`` for a remote root: every object the registered manifests list, in the bucket.

Each object is checked against the catalog's record: present, its size, its sha256 (streamed,
never written to disk). A problem is one line naming the key and the file it stands for.
"""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor

from corpus.storage.remote import RemoteRoot, filesystem


def remote_problem(fs, remote: RemoteRoot, entry: dict, hash_it: bool = True) -> str | None:
    """Why the object of a manifest entry does not match it, or None."""
    key = remote.object_key(entry["sha256"])
    where = f"s3://{key} ({entry['path']})"
    try:
        size = fs.info(key)["size"]
    except FileNotFoundError:
        return f"{where}: missing from the bucket"
    if entry["bytes"] is not None and size != entry["bytes"]:
        return f"{where}: size {size} bytes, catalog {entry['bytes']} bytes"
    if hash_it:
        h = hashlib.sha256()
        with fs.open(key, "rb", block_size=1 << 22) as f:
            while block := f.read(1 << 22):
                h.update(block)
        if h.hexdigest() != entry["sha256"]:
            return (f"{where}: sha256 {h.hexdigest()[:12]}… does not match the catalog's {entry['sha256'][:12]}… "
                    f"(corrupted)")
    return None


def verify_remote(catalog, remote: RemoteRoot, versions: list[str] | None = None, workers: int = 8,
                  roles: list[str] | None = None) -> tuple[int, list[str]]:
    """(objects checked, problems) over the remote root's registered versions and plans."""
    fs = filesystem()
    rows = catalog.query_dicts("SELECT version, manifest_key, manifest FROM remote_versions WHERE remote = ? "
                               "ORDER BY version", [remote.url], read_only=True)
    entries: dict[str, dict] = {}
    problems: list[str] = []
    for row in rows:
        if versions and row["version"] not in versions:
            continue
        if not fs.exists(row["manifest_key"]):
            problems.append(f"s3://{row['manifest_key']}: manifest of {row['version']} missing from the bucket")
        for entry in json.loads(row["manifest"])["files"]:
            if roles and entry["role"] not in roles:
                continue
            entries.setdefault(entry["sha256"], entry)  # one object may serve several versions
    with ThreadPoolExecutor(workers) as pool:
        problems += [why for why in pool.map(lambda e: remote_problem(fs, remote, e), entries.values()) if why]
    return len(entries), problems
