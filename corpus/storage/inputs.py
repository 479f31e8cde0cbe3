"""``--from s3://bucket/key`` (a key, a prefix or a glob): inputs read through fsspec.

A build fingerprints and reads its inputs several times (fingerprint, records, fingerprint
again to refuse an input changed mid-build), so each remote input is copied once into
``$HRM_CACHE/inputs/<bucket>/<key>`` (refreshed when its ETag or size changes) and the build
reads the copy: the same bytes give the same version id as the same file read locally.
"""

from __future__ import annotations

import json
from pathlib import Path

from corpus.errors import UserError
from corpus.storage.remote import filesystem, remote_error
from corpus.storage.roots import cache_dir


def stage_input(url: str, suffixes: tuple[str, ...]) -> list[Path]:
    """Local copies of the objects ``url`` names (a key, a ``prefix/`` of known suffixes, a glob)."""
    from corpus.atomic import atomic_path, write_bytes_atomic

    fs = filesystem()
    path = url[len("s3://"):]
    try:
        if any(ch in path for ch in "*?["):
            keys = sorted(fs.glob(path))
        elif fs.isdir(path):
            keys = sorted(k for k in fs.find(path) if k.endswith(suffixes))
            if not keys:
                raise UserError(f"no input files ({', '.join(suffixes)}) under {url}")
        elif fs.exists(path):
            keys = [path]
        else:
            raise UserError(f"input not found: {url}")
        out = []
        for key in keys:
            info = fs.info(key)
            if info.get("type") != "file":
                continue
            local = cache_dir() / "inputs" / key
            stamp = local.with_name(f".{local.name}.etag")
            tag = json.dumps([str(info.get("ETag")), info.get("size")])
            if not (local.is_file() and stamp.is_file() and stamp.read_text() == tag):
                with atomic_path(local) as tmp:
                    fs.get_file(key, str(tmp))
                write_bytes_atomic(stamp, tag.encode())
            out.append(local)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - the store's own error, in one line
        raise remote_error(f"--from {url}", exc) from None
    if not out:
        raise UserError(f"--from {url}: matches no objects")
    return out
