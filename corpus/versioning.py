"""Content-addressed version ids: same inputs, options, tokenizer and code give the same id."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpus.atomic import sha256_file


@lru_cache(maxsize=1)
def code_version() -> str:
    """Hash of the corpus package's Python sources: a code change that could change rows changes ids."""
    import corpus

    root = Path(corpus.__file__).parent
    h = hashlib.sha256(corpus.__version__.encode())
    for path in sorted(root.rglob("*.py")):
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
