"""Reading a remote root on a node: a content-addressed local cache, linked into the working root.

A registered file is fetched once per node into ``$HRM_CACHE/objects/<sha[:2]>/<sha256>``:
under a file lock (concurrent readers on the node, threads or loader processes, wait for the
one download instead of repeating it), into a temporary file, hashed, and renamed into place
only when its sha256 is the catalog's. The working root then gets a symlink at the file's
registered path, so the reader memory-maps it exactly as it maps a local shard (and its
first-open xxh3 check, :mod:`corpus.mixing.readcheck`, runs as it does locally).

:class:`PlanFetcher` is the reader's side: shards on demand, and the next shards of the plan's
order downloaded ahead by a background thread.
"""

from __future__ import annotations

import json
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from corpus.errors import UserError
from corpus.storage.remote import RemoteRoot, filesystem, remote_error
from corpus.storage.roots import cache_dir

PREFETCH_ENV = "HRM_PREFETCH_SHARDS"
SMALL_ROLES = ("plan", "tokenizer", "extra")  # fetched when a node pulls the catalog
_COUNT_LOCK = threading.Lock()
DOWNLOADS = {"objects": 0, "bytes": 0}  # this process's downloads (what tests and benchmarks count)


class ObjectCache:
    """The node's downloaded objects, by sha256."""

    def __init__(self, remote: RemoteRoot, directory: Path | None = None):
        self.remote = remote
        self.dir = Path(directory or cache_dir() / "objects")

    def path(self, sha256: str) -> Path:
        return self.dir / sha256[:2] / sha256

    def get(self, sha256: str, size: int | None, rel: str = "") -> Path:
        """The local copy of object ``sha256`` (downloaded and checked first if absent)."""
        path = self.path(sha256)
        if _complete(path, size):  # renamed into place only after its hash matched
            return path
        from filelock import FileLock

        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            if _complete(path, size):  # another reader on this node fetched it while we waited
                return path
            self._download(sha256, path, rel)
        return path

    def _download(self, sha256: str, path: Path, rel: str) -> None:
        from corpus.atomic import atomic_path, sha256_file

        key = self.remote.object_key(sha256)
        with atomic_path(path) as tmp:
            try:
                filesystem().get_file(key, str(tmp))
            except FileNotFoundError:
                raise UserError(f"s3://{key}: missing from the bucket ({rel or 'a registered file'}); "
                                f"upload it again: python -m corpus.build ... --data-dir {self.remote.url}") from None
            except Exception as exc:  # noqa: BLE001 - the store's own error, in one line
                raise remote_error(f"s3://{key}", exc) from None
            digest = sha256_file(tmp)
            if digest != sha256:
                raise UserError(f"s3://{key}: sha256 {digest[:12]}… does not match the catalog's {sha256[:12]}… "
                                f"(corrupted remote object{', ' + rel if rel else ''}); nothing was read from it: "
                                f"rebuild its version with --rebuild (python -m corpus.verify --data-dir "
                                f"{self.remote.url} lists every damaged object)")
            os.chmod(tmp, 0o444)  # content-addressed: never written again
        with _COUNT_LOCK:
            DOWNLOADS["objects"] += 1
            DOWNLOADS["bytes"] += path.stat().st_size


def _complete(path: Path, size: int | None) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    return size is None or st.st_size == size


def link(root: Path, rel: str, cached: Path) -> Path:
    """``root/rel`` pointing at the cached object (a file already there, the driver's own, stays)."""
    dest = Path(root) / rel
    if dest.is_symlink():
        if os.readlink(dest) == str(cached):
            return dest
    elif dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.link-{os.getpid()}-{threading.get_ident()}")
    os.symlink(cached, tmp)
    os.replace(tmp, dest)  # atomic: a concurrent reader sees the old link or the new one
    return dest


def fetch_small_files(root: Path, remote: RemoteRoot) -> int:
    """Every plan and tokenizer file of the remote root's registered manifests (small: fetched
    when a node pulls the catalog, so plans open as they do locally). Returns files fetched."""
    from corpus.catalog import Catalog

    try:
        rows = Catalog(root).query("SELECT manifest FROM remote_versions WHERE remote = ?", [remote.url],
                                   read_only=True)
    except Exception:  # noqa: BLE001 - a catalog without the table: nothing uploaded yet
        return 0
    cache, n = ObjectCache(remote), 0
    for (text,) in rows:
        for entry in json.loads(text)["files"]:
            if entry["role"] in SMALL_ROLES:
                link(root, entry["path"], cache.get(entry["sha256"], entry["bytes"], entry["path"]))
                n += 1
    return n


class PlanFetcher:
    """Fetches a plan's shard files into the working root: on demand, and ``depth`` shards ahead
    in plan order on a background thread."""

    def __init__(self, root: Path, remote: RemoteRoot, records: list[dict], depth: int | None = None):
        self.root = Path(root)
        self.cache = ObjectCache(remote)
        self.records = {str(self.root / r["path"]): r for r in records}
        self.depth = int(os.environ.get(PREFETCH_ENV, "4")) if depth is None else depth
        self._order: dict[str, list[Path]] = {}
        self._ahead: set[Path] = set()
        self._pool: ThreadPoolExecutor | None = None
        self._pending: list = []

    def ensure(self, path: Path) -> None:
        record = self.records.get(str(path))
        if record is None or path.exists():  # not registered (the reader's check says so), or here already:
            return  # the driver's own file, or a link to an object this node fetched
        link(self.root, record["path"], self.cache.get(record["sha256"], record["bytes"], record["path"]))

    def ensure_shard(self, parquet: Path) -> None:
        from corpus.shards import sidecar_paths

        for path in (*sidecar_paths(Path(parquet)), Path(parquet)):
            self.ensure(path)

    def has_order(self, split: str) -> bool:
        return split in self._order

    def set_order(self, split: str, parquets: list[Path]) -> None:
        self._order[split] = parquets

    def opened(self, split: str, parquet: Path) -> None:
        """The reader opened ``parquet``: download the next ``depth`` shards of the plan's order."""
        order = self._order.get(split)
        if not order or self.depth <= 0:
            return
        try:
            at = order.index(Path(parquet))
        except ValueError:
            return
        for nxt in order[at + 1:at + 1 + self.depth]:
            if nxt not in self._ahead:
                self._ahead.add(nxt)
                if self._pool is None:
                    self._pool = ThreadPoolExecutor(1, thread_name_prefix="shard-prefetch")
                self._pending = [f for f in self._pending if not f.done()]
                self._pending.append(self._pool.submit(self._quietly, nxt))

    def wait(self) -> None:
        """Until the shards being fetched ahead are here (tests, benchmarks)."""
        for future in list(self._pending):
            future.result()

    def _quietly(self, parquet: Path) -> None:
        try:
            self.ensure_shard(parquet)
        except Exception:  # noqa: BLE001 - the reader fetches it again and reports the error itself
            self._ahead.discard(parquet)


def plan_fetcher(root: Path, shard_files: list[dict]) -> PlanFetcher | None:
    """A fetcher when ``root`` is a remote root's working root, else None (a local root)."""
    from corpus.storage.roots import remote_of

    remote = remote_of(root)
    return PlanFetcher(root, remote, shard_files) if remote is not None else None
