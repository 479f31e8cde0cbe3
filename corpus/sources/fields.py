"""Typed field access for sources: every failure is a BadRecord naming the field."""

from __future__ import annotations

from typing import Any

from corpus.errors import BadRecord
from corpus.loading import get_path


def require(record: Any, path: str, kind: type | tuple[type, ...] = str, allow_empty: bool = False) -> Any:
    """The value at dotted ``path`` (``a.b[0]``), checked for type and non-emptiness."""
    try:
        value = get_path(record, path)
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise BadRecord(str(exc.args[0]) if exc.args else str(exc), path) from None
    if value is None:
        raise BadRecord("missing value (null)", path)
    if kind is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        raise BadRecord(f"expected text, got {type(value).__name__}", path)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise BadRecord(f"expected {names}, got {type(value).__name__}", path)
    if isinstance(value, str) and not allow_empty and not value.strip():
        raise BadRecord("empty text", path)
    return value


def optional(record: Any, path: str, default: Any = None) -> Any:
    try:
        value = get_path(record, path)
    except (KeyError, IndexError, TypeError, ValueError):
        return default
    return default if value is None else value


def native_id(record: Any, field: str | None, ref: str) -> str:
    """The record's own id from ``field``, else its position (``ref`` after the last # or :)."""
    if field:
        value = require(record, field, (str, int))
        return str(value)
    for sep in ("#", ":"):
        if sep in ref:
            return ref.rsplit(sep, 1)[1]
    return ref
