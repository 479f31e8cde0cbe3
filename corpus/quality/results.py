"""A suite's outcome, whichever engine ran it, and its failures condensed to one line each.

Both engines (:mod:`corpus.quality.native`, :mod:`corpus.quality.gx`) produce GX 1.x's
``ExpectationSuiteValidationResult.to_json_dict()`` structure; :func:`condense` reads that dict
into a :class:`SuiteResult`: only ``critical`` failures fail a suite, and each failure is kept
as what a person needs in one line (the expectation, the column, how many rows, a few example
ids). Nothing here imports GX or pandas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What both engines are asked for: counts, the first 5 unexpected values and their row ids.
RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}


@dataclass
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failed: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None  # ExpectationSuiteValidationResult.to_json_dict() structure
    engine: str | None = None              # "native" or "gx"; None when no suite ran (unreadable shard)


def result_format(columns, index_column: str | None) -> dict[str, Any]:
    """The result format for a frame: row ids (``index_column``) attached when the frame has them."""
    out = dict(RESULT_FORMAT)
    if index_column and index_column in columns:
        out["unexpected_index_column_names"] = [index_column]
    return out


def condense(suite_name: str, result: dict[str, Any], engine: str) -> SuiteResult:
    """Only ``critical`` failures fail a suite; ``warning`` ones are kept and reported."""
    failures = [failure(r) for r in result["results"] if not r["success"]]
    critical = [f for f in failures if f["severity"] == "critical"]
    return SuiteResult(suite_name, not critical, int(result["statistics"]["evaluated_expectations"]), len(critical),
                       failures, result, engine)


def failure(r: dict[str, Any]) -> dict[str, Any]:
    """One failed expectation (an entry of ``results``) as a small JSON-able dict (see :func:`describe`)."""
    config = r["expectation_config"]
    kwargs = {k: v for k, v in config["kwargs"].items() if k not in ("batch_id", "result_format")}
    out: dict[str, Any] = {"expectation": config["type"], "description": config.get("description") or "",
                           "kwargs": _plain(kwargs), "severity": str(config.get("severity") or "critical")}
    result = r.get("result") or {}
    if "unexpected_count" in result:
        out["unexpected_count"] = int(result["unexpected_count"])
        examples = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list") or []
        out["examples"] = _plain(examples[:5])
    if "observed_value" in result:
        out["observed"] = _plain(result["observed_value"])
    info = r.get("exception_info") or {}
    if info.get("raised_exception"):
        out["error"] = str(info.get("exception_message", "")).splitlines()[0][:200]
    return out


def error_result(suite_name: str, message: str) -> SuiteResult:
    """A suite that could not run (the shard could not be read): one failed pseudo-expectation."""
    return SuiteResult(suite_name, False, 1, 1, [{"expectation": "shard is readable", "description": message,
                                                  "kwargs": {}, "error": message, "severity": "critical"}])


def describe(f: dict[str, Any]) -> str:
    """One line: ``description (expectation on column): N rows, e.g. id=value, ...``.

    No square brackets: build summaries print through rich, which reads them as markup.
    """
    kwargs = f.get("kwargs") or {}
    column = kwargs.get("column") or "/".join(str(kwargs[k]) for k in ("column_A", "column_B") if k in kwargs)
    head = f"{f.get('description') or f['expectation']} ({f['expectation']}{f' on {column}' if column else ''})"
    if f.get("severity", "critical") != "critical":
        head = f"{f['severity']}: {head}"
    if f.get("error"):
        return f"{head}: {f['error']}"
    if "unexpected_count" in f:
        return f"{head}: {f['unexpected_count']} rows, e.g. {_examples(f.get('examples') or [], column)}"
    if "observed" in f:
        return f"{head}: observed {f['observed']}"
    return head


def _examples(examples: list, column: str) -> str:
    parts = []
    for ex in examples[:3]:
        if isinstance(ex, dict):
            row_id = ex.get("id")
            value = ex.get(column)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            parts.append(f"{row_id}" + (f"={value}" if value is not None and column != "id" else ""))
        else:
            parts.append(str(ex))
    return ", ".join(parts) or "-"


def _plain(value):
    """numpy scalars and tuples → JSON types."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value != value:
        return None
    return value
