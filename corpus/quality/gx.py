"""Running a list of expectations over a pandas frame with Great Expectations 1.x.

One ephemeral context per validation run (nothing written to a ``gx/`` project); results are
kept as GX's own JSON so the report can render them as Data Docs later
(:mod:`corpus.quality.report`). Failures are condensed to what a person needs in one line:
the expectation, the column, how many rows, and a few example ids.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 5}


@dataclass
class SuiteResult:
    suite: str
    success: bool
    evaluated: int
    failed: int
    failures: list[dict[str, Any]] = field(default_factory=list)
    result: dict[str, Any] | None = None  # GX ExpectationSuiteValidationResult as JSON


def _quiet_gx() -> None:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    logging.getLogger("great_expectations").setLevel(logging.ERROR)


class Runner:
    """An ephemeral GX context holding one suite per name; :meth:`run` validates a frame."""

    def __init__(self):
        _quiet_gx()
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        self.datasource = self.context.data_sources.add_pandas("facts")
        self._suites: dict[str, Any] = {}
        self._assets = 0

    def suite(self, name: str, expectations: list):
        if name not in self._suites:
            self._suites[name] = self.context.suites.add(self.gx.ExpectationSuite(name=name, expectations=expectations))
        return self._suites[name]

    def run(self, suite_name: str, expectations: list, frame, asset: str,
            index_column: str | None = "id") -> SuiteResult:
        """Validate ``frame`` (pandas) against the suite ``suite_name`` (created from ``expectations``)."""
        suite = self.suite(suite_name, expectations)
        self._assets += 1
        data_asset = self.datasource.add_dataframe_asset(f"{asset} #{self._assets}")
        batch = data_asset.add_batch_definition_whole_dataframe("frame")
        definition = self.context.validation_definitions.add(
            self.gx.ValidationDefinition(name=f"{asset} {suite_name} #{self._assets}", data=batch, suite=suite))
        result_format = dict(RESULT_FORMAT)
        if index_column and index_column in frame.columns:
            result_format["unexpected_index_column_names"] = [index_column]
        res = definition.run(batch_parameters={"dataframe": frame}, result_format=result_format)
        return condense(suite_name, res)


def condense(suite_name: str, res) -> SuiteResult:
    """Only ``critical`` failures fail a suite; ``warning`` ones are kept and reported."""
    failures = [failure(r) for r in res.results if not r.success]
    critical = [f for f in failures if f["severity"] == "critical"]
    stats = res.statistics
    return SuiteResult(suite_name, not critical, int(stats["evaluated_expectations"]), len(critical), failures,
                       res.to_json_dict())


def failure(r) -> dict[str, Any]:
    """One failed expectation as a small JSON-able dict (see :func:`describe`)."""
    config = r.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k not in ("batch_id", "result_format")}
    severity = str(config.to_json_dict().get("severity") or "critical")
    out: dict[str, Any] = {"expectation": config.type, "description": config.description or "",
                           "kwargs": _plain(kwargs), "severity": severity}
    result = r.result or {}
    if "unexpected_count" in result:
        out["unexpected_count"] = int(result["unexpected_count"])
        examples = result.get("partial_unexpected_index_list") or result.get("partial_unexpected_list") or []
        out["examples"] = _plain(examples[:5])
    if "observed_value" in result:
        out["observed"] = _plain(result["observed_value"])
    info = r.exception_info or {}
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
