"""Content-addressed version ids: same inputs, options, tokenizer and code give the same id."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpus.atomic import sha256_file


# Modules whose code decides what a row holds; a change in any of them changes version ids.
# (Mixer, catalog or report code does not: rebuilding shards for those would be waste.)
ROW_CODE = ["build.py", "rows.py", "shards.py", "loading.py", "tokenizer.py", "sources/*.py", "synthetic/*.py"]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a hash of the row-producing modules (``ROW_CODE``)."""
    import corpus

    root = Path(corpus.__file__).parent
    h = hashlib.sha256(corpus.__version__.encode())
    for path in sorted({p for pattern in ROW_CODE for p in root.glob(pattern)}):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return f"{corpus.__version__}+{h.hexdigest()[:12]}"


def input_fingerprint(files: list[Path] | None, extra: str = "") -> str:
    """sha256 over the input files' names and contents (or over ``extra`` for hub/generated inputs)."""
    h = hashlib.sha256(extra.encode())
    for path in files or []:
        h.update(path.name.encode())
        h.update(sha256_file(path).encode())
    return h.hexdigest()


def version_id(source: str, fingerprint: str, config: dict[str, Any], tokenizer_sha: str, code: str) -> str:
    payload = json.dumps(
        {"source": source, "input": fingerprint, "config": config, "tokenizer": tokenizer_sha, "code": code},
        sort_keys=True,
    )
    return "v" + hashlib.sha256(payload.encode()).hexdigest()[:16]
