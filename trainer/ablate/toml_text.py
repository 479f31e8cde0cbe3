"""A minimal TOML writer for derived manifests (the venv has readers only: tomllib, no writer).

Top-level tables become ``[section]`` headers; everything inside them is written inline (inline
tables, arrays of inline tables), which TOML 1.0 allows and ``tomllib`` reads back. The output is
deterministic (keys in insertion order), so a rewritten arm manifest is byte-identical to the one a
run was trained on and the trainer's manifest-sha resume check keeps holding.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

_BARE = re.compile(r"^[A-Za-z0-9_-]+$")


def _key(key: str) -> str:
    return key if _BARE.match(key) else json.dumps(key)


def _value(value: Any, where: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where}: TOML cannot hold {value!r} here")
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON string escapes are valid TOML basic strings
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, f"{where}[{i}]") for i, v in enumerate(value)) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_key(str(k))} = {_value(v, f'{where}.{k}')}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise ValueError(f"{where}: cannot write a {type(value).__name__} as TOML")


def dumps(doc: dict[str, Any], header: str = "") -> str:
    """``doc`` as TOML text: scalars of the top level first, then one ``[table]`` per dict."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    tables = {k: v for k, v in doc.items() if isinstance(v, dict)}
    for key, value in doc.items():
        if key not in tables:
            lines.append(f"{_key(key)} = {_value(value, key)}")
    for name, table in tables.items():
        lines += ["", f"[{_key(name)}]"]
        lines += [f"{_key(str(k))} = {_value(v, f'{name}.{k}')}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
