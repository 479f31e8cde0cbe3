"""Content-addressed version ids: same inputs, options, tokenizer and code give the same id."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from corpus.atomic import sha256_file


# Modules whose code decides what a row holds for every source; a change in any of them changes
# every version id. (Mixer, catalog or report code does not: rebuilding shards for those would be
# waste.) A source's own modules are added per source (:func:`source_modules`), so editing the
# MBPP source leaves GSM8K's version ids alone.
ROW_CODE = ["build.py", "rows.py", "shards.py", "loading.py", "tokenizer.py", "sources/__init__.py",
            "sources/base.py", "sources/fields.py", "synthetic/__init__.py", "synthetic/base.py"]
OWN_PREFIXES = ("corpus.sources.", "corpus.synthetic.")


def source_modules(source_cls: type) -> list[Path]:
    """Files of the modules ``source_cls`` is made of: its own module and, transitively, the
    ``corpus.sources``/``corpus.synthetic`` modules it references (a synthetic task's generator
    by its task object), never a package's ``__init__`` re-exports."""
    import inspect
    import sys
    import types

    seen: set[str] = set()
    todo = [source_cls.__module__]
    task = getattr(source_cls, "task", None)
    if isinstance(task, str):
        from corpus.synthetic import TASKS

        if task in TASKS:
            todo.append(type(TASKS[task]).__module__)
    while todo:
        name = todo.pop()
        if name in seen or not name.startswith(OWN_PREFIXES) or name not in sys.modules:
            continue
        seen.add(name)
        module = sys.modules[name]
        if getattr(module, "__path__", None) is not None:  # a package: its file is shared code
            continue
        for value in vars(module).values():
            ref = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
            if isinstance(ref, str):
                todo.append(ref)
    files = []
    for name in sorted(seen):
        module = sys.modules[name]
        if getattr(module, "__path__", None) is None:
            files.append(Path(inspect.getfile(module)))
    return files


@lru_cache(maxsize=None)
def code_version(source_cls: type | None = None) -> str:
    """Package version plus a hash of the shared row-producing modules (``ROW_CODE``) and, given
    a source class, of that source's own modules."""
    import corpus

    root = Path(corpus.__file__).parent
    h = hashlib.sha256(corpus.__version__.encode())
    own = source_modules(source_cls) if source_cls is not None else []
    for path in sorted({p for pattern in ROW_CODE for p in root.glob(pattern)} | set(own)):
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
