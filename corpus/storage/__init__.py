"""Data on object storage: a data root or an input may be ``s3://bucket/prefix``.

    driver (one writer)                                   s3://bucket/prefix/
    ──────────────────                                    ─────────────────────────────────────
    build/mix into the local working root  ──upload──►    objects/sha256/ab/<sha256>   (every file)
      $HRM_CACHE/roots/<bucket>/<prefix>/  ──then──►      versions/<version or plan id>.json
      (catalog.duckdb lives here)          ──then──►      catalog.duckdb  (read-only copy)
                 │ register remote_versions after the manifest
    other nodes: pull catalog.duckdb ─► plans, tokenizers fetched ─► shards fetched in plan order
                 into $HRM_CACHE/objects (one download per node, sha256 checked) and linked into
                 the node's working root, then memory-mapped exactly as local shards are

Everything upstream (builds, the mixer, the trainer) keeps working on a local directory: the
working root. :mod:`corpus.paths` turns an ``s3://`` data root into it (:func:`roots.prepare`);
:func:`publish_remote` uploads a finished version; :mod:`.remote_verify` checks the bucket;
:mod:`.fetch` reads through the node-local cache. s3fs is imported only here, lazily: the
default install has no object-storage dependency (``pip install hrm-corpus[s3]``).
"""

from __future__ import annotations

from corpus.storage.remote import RemoteRoot, is_remote
from corpus.storage.roots import remote_of
from corpus.storage.upload import publish_remote

__all__ = ["RemoteRoot", "is_remote", "publish_remote", "remote_of"]
