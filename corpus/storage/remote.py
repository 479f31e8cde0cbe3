"""One remote root (``s3://bucket/prefix``): its parsed form, its key layout, its filesystem.

Keys under the prefix (docs/storage.md):

    objects/sha256/<sha[:2]>/<sha256>   every registered file, by content (written once, never changed)
    versions/<id>.json                  a version's or plan's manifest: path → sha256, bytes, role
    catalog.duckdb                      the driver's catalog, a read-only copy for other nodes
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache

from corpus.errors import UserError

SCHEMES = ("s3://",)
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def is_remote(text) -> bool:
    return isinstance(text, str) and text.startswith(SCHEMES)


@dataclass(frozen=True)
class RemoteRoot:
    """``s3://bucket/prefix`` parsed and validated; ``url`` is its canonical spelling."""

    bucket: str
    prefix: str  # no leading or trailing slash; may be empty

    @classmethod
    def parse(cls, text: str) -> "RemoteRoot":
        if not is_remote(text):
            raise UserError(f"{text!r}: not an object-storage root (use s3://bucket/prefix)")
        bucket, _, prefix = text[len("s3://"):].partition("/")
        if not _BUCKET.fullmatch(bucket):
            raise UserError(f"{text}: bucket {bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        if any(part in ("", ".", "..") for part in prefix.split("/")) and prefix:
            raise UserError(f"{text}: the prefix may not hold empty, '.' or '..' parts")
        return cls(bucket, prefix)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, *parts: str) -> str:
        """``bucket/prefix/parts...`` (the path form s3fs takes)."""
        return "/".join(p for p in (self.bucket, self.prefix, *parts) if p)

    def object_key(self, sha256: str) -> str:
        return self.key("objects", "sha256", sha256[:2], sha256)

    def manifest_key(self, version: str) -> str:
        return self.key("versions", f"{version}.json")

    def catalog_key(self) -> str:
        return self.key("catalog.duckdb")


def filesystem():
    """An s3fs filesystem configured by the standard AWS settings (credentials, region,
    ``AWS_ENDPOINT_URL`` for S3-compatible stores such as MinIO or a local moto server)."""
    return _filesystem(os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_S3"),
                       os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION"), os.getpid())


@lru_cache(maxsize=4)
def _filesystem(endpoint: str | None, region: str | None, pid: int):  # per process: a forked loader worker gets its own
    try:
        import s3fs
    except ImportError:
        raise UserError("s3:// roots and inputs need s3fs: pip install 'hrm-corpus[s3]'") from None
    client = {k: v for k, v in (("endpoint_url", endpoint), ("region_name", region)) if v}
    # a fresh instance (no s3fs instance cache): the settings above decide, not an earlier call's
    return s3fs.S3FileSystem(client_kwargs=client, skip_instance_cache=True, use_listings_cache=False)


def remote_error(what: str, exc: BaseException, hint: str = "") -> UserError:
    """One line for a failed object-storage call, naming the key and the store's answer."""
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
    return UserError(f"{what}: {type(exc).__name__}: {first}" + (f"; {hint}" if hint else ""))
