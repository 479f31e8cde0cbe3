"""The build's engine: the same expectation suites as Great Expectations, evaluated with numpy.

``NativeRunner().run(suite, expectations, frame, asset)`` has the GX runner's signature
(:class:`corpus.quality.gx.Runner`) and returns the same :class:`SuiteResult`, whose ``result``
is GX 1.x's ``ExpectationSuiteValidationResult.to_json_dict()`` for the same inputs and result
format (SUMMARY, 5 partial values, the row ids). Importing GX takes ~4 s and pandas 0.5 s; this
module needs neither, so a build validates every shard in milliseconds.
tests/quality/test_native_engine.py runs both engines on the same frames, clean and corrupted,
and requires equal results apart from ids, tracebacks and run metadata.

What "the same" takes (GX 1.24 over pandas 3, read from their source and checked by the test):

* **Missing values.** NaN in float columns; None and NaN in object columns. A column of text
  (and None) is pandas' ``str`` dtype, whose missing value is the one ``np.nan`` object;
  other object columns keep their own None/NaN objects. Column-map expectations skip missing
  values (``missing_count``), except ``not_be_null``, which reports no missing counts at all;
  pair expectations skip only rows where *both* values are missing (``ignore_row_if`` default).
* **Which rows.** The first 5 unexpected rows in row order give ``partial_unexpected_list``
  and ``partial_unexpected_index_list`` (the domain column(s), then the index column; for a pair
  A, the index, B); ``partial_unexpected_counts`` counts only those 5, most common first, ties by
  value — and is left out when the values do not sort (None against None, text against
  numbers), as GX's ``TypeError`` handler does. Values are the Python objects pandas hands out
  (Python scalars from a Series, numpy scalars from ``.values`` for pairs), because NaN counts
  by identity: the text dtype's single NaN counts as one value, fresh float NaNs each once.
* **Order of results.** GX groups expectations by ``column`` in order of first appearance
  (``Validator.process_expectations_for_validation``: pair and table expectations share one
  "no column" group), and puts expectations whose metrics failed (a missing column, a between
  over text) first, each with ``result`` empty and the failing metrics in ``exception_info``.
* **Numbers.** Percentages as GX computes them (``count / total * 100``), ``success`` through
  ``mostly`` as ``(considered - unexpected) / considered >= mostly``; ``unique`` marks every
  copy of a repeated value; the unique proportion is distinct non-missing / non-missing (int
  0 when there are none); distinct-set lists are sorted when they sort, else left in set order.
* **Regex.** Python ``re.search`` over ``str(value)``: what pandas guarantees for
  ``Series.str.contains`` (it falls back from RE2 to ``re`` wherever the two differ).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections import Counter
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from corpus.quality.frame import Frame, distinct, duplicated, null_mask
from corpus.quality.results import SuiteResult, condense, result_format
from corpus.quality.spec import Expectation

ENGINE = "native"
ENGINE_NAME = "hrm-corpus native"
MAX_DISTINCT_VALUES = 20  # great_expectations.constants: distinct-set lists are cut here
NO_COLUMN = "_nocolumn"
FLOAT_KWARGS = {  # pydantic turns these into floats in GX's configuration (Union[float, ...] fields)
    "expect_column_values_to_be_between": ("min_value", "max_value", "mostly"),
    "expect_column_proportion_of_unique_values_to_be_between": ("min_value", "max_value"),
}
MAP_METRIC = {
    "expect_column_values_to_be_between": "column_values.between",
    "expect_column_values_to_not_be_null": "column_values.nonnull",
    "expect_column_values_to_be_unique": "column_values.unique",
    "expect_column_values_to_be_in_set": "column_values.in_set",
    "expect_column_values_to_match_regex": "column_values.match_regex",
}
AGGREGATE_METRICS = {  # the metrics GX reports as failed when an aggregate's column does not exist
    "expect_column_proportion_of_unique_values_to_be_between": ("column_values.nonnull.condition",
                                                                "column.distinct_values.count"),
    "expect_column_distinct_values_to_equal_set": ("column.distinct_values.missing_from_column.count",
                                                   "column.distinct_values.missing_from_column",
                                                   "column.distinct_values.not_in_set",
                                                   "column.distinct_values.not_in_set.count"),
}
MIXED_TYPES = "Column values, min_value, and max_value must either be None or of the same type."


class MetricError(Exception):
    """GX could not compute these metrics: ``[(metric name, message), ...]``."""

    def __init__(self, failed: list[tuple[str, str]]):
        super().__init__(failed[0][1])
        self.failed = failed


class Column:
    """One column as pandas would hold it: its kind, missing mask, and the Python values it hands out."""

    KINDS = {"i": "int", "u": "int", "f": "float", "b": "bool"}

    def __init__(self, values: np.ndarray):
        if values.dtype.kind in "US":  # numpy text: pandas makes it its str dtype
            values = values.astype(object)
        self.values = values
        self.nulls = null_mask(values)
        self.numeric = values.dtype.kind in "iufb"
        self._kind = self.KINDS.get(values.dtype.kind, None if values.dtype.kind == "O" else "other")

    @property
    def kind(self) -> str:
        """int, float, bool, str (text and missing values: pandas' str dtype), object or other.

        Worked out on first use: a column whose values all meet the expectation never needs it."""
        if self._kind is None:
            present = self.values[~self.nulls]
            self._kind = "str" if len(present) and set(map(type, present)) == {str} else "object"
        return self._kind

    def python(self, rows: np.ndarray) -> list:
        """Values as iterating the pandas Series gives them (Python scalars; the str dtype's NaN)."""
        if len(rows) == 0:
            return []
        out = self.values[rows].tolist()
        if self.kind == "str":
            out = [np.nan if v is None or v != v else v for v in out]
        return out

    def raw(self, rows: np.ndarray) -> list:
        """Values as iterating ``Series.values`` gives them (numpy scalars for numbers)."""
        if len(rows) == 0:
            return []
        if self.kind == "str":
            return self.python(rows)
        return list(self.values[rows])


class NativeRunner:
    """Suites by name (the first list given for a name is kept, as GX's context does) and a batch counter."""

    engine = ENGINE

    def __init__(self):
        self._suites: dict[str, list[tuple[Expectation, str]]] = {}
        self._assets = 0

    def suite(self, name: str, expectations: list[Expectation]) -> list[tuple[Expectation, str]]:
        if name not in self._suites:
            self._suites[name] = [(e, str(uuid.uuid4())) for e in expectations]
        return self._suites[name]

    def run(self, suite_name: str, expectations: list[Expectation], frame, asset: str,
            index_column: str | None = "id") -> SuiteResult:
        """Validate ``frame`` (a :class:`Frame`, or a dict of equal-length arrays) against the suite."""
        if not isinstance(frame, Frame):
            frame = Frame(dict(frame))
        suite = self.suite(suite_name, expectations)
        self._assets += 1
        batch_id = f"facts-{asset} #{self._assets}"
        fmt = result_format(frame.columns, index_column)
        run = _Run(frame, fmt)
        failed, done = [], []
        for spec, expectation_id in _validation_order(suite):
            config = _config(spec, expectation_id, batch_id)
            try:
                success, result = run.evaluate(spec, config["kwargs"])
            except MetricError as exc:
                failed.append(_errored(config, exc, batch_id))
                continue
            done.append({"success": success, "expectation_config": config, "result": _json(result), "meta": {},
                         "exception_info": {"raised_exception": False, "exception_traceback": None,
                                            "exception_message": None}})
        results = failed + done
        successful = sum(bool(r["success"]) for r in results)
        now = datetime.now(timezone.utc).isoformat()
        out = {
            "success": successful == len(results),
            "results": results,
            "suite_name": suite_name,
            "suite_parameters": {},
            "statistics": {"evaluated_expectations": len(results), "successful_expectations": successful,
                           "unsuccessful_expectations": len(results) - successful,
                           "success_percent": successful / len(results) * 100 if results else None},
            "meta": {"engine": ENGINE_NAME, "batch_spec": {"batch_data": "Frame"},
                     "active_batch_definition": {"datasource_name": "facts", "data_connector_name": "fluent",
                                                 "data_asset_name": f"{asset} #{self._assets}",
                                                 "batch_identifiers": {"dataframe": "<DATAFRAME>"}},
                     "validation_id": str(uuid.uuid4()), "checkpoint_id": None,
                     "run_id": {"run_name": None, "run_time": now}, "validation_time": now},
            "id": None,
        }
        return condense(suite_name, out, ENGINE)


def _validation_order(suite: list) -> list:
    """GX's order: grouped by ``column`` in order of first appearance, the rest in one group."""
    groups: dict[str, list] = {}
    for item in suite:
        column = item[0].kwargs.get("column")
        groups.setdefault(column if isinstance(column, str) else NO_COLUMN, []).append(item)
    return [item for group in groups.values() for item in group]


def _config(spec: Expectation, expectation_id: str, batch_id: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"batch_id": batch_id}
    floats = FLOAT_KWARGS.get(spec.type, ())
    for key, value in spec.kwargs.items():
        if key in floats and isinstance(value, (int, float)):
            value = float(value)
        elif key == "value" and isinstance(value, (int, float)):
            value = int(value)
        kwargs[key] = value
    out: dict[str, Any] = {"type": spec.type, "kwargs": _json(kwargs), "meta": {}, "id": expectation_id}
    if spec.description:
        out["description"] = spec.description
    out["severity"] = spec.severity
    return out


def _errored(config: dict, exc: MetricError, batch_id: str) -> dict[str, Any]:
    domain = hashlib.md5(json.dumps({k: v for k, v in config["kwargs"].items() if k.startswith("column")} |
                                    {"batch_id": batch_id}, sort_keys=True).encode()).hexdigest()
    info = {f"MetricConfigurationID(metric_name='{name}', metric_domain_kwargs_id='{domain}', "
            f"metric_value_kwargs_id=())": {"exception_traceback": f"corpus.quality.native: {name}: {message}\n",
                                            "exception_message": message, "raised_exception": True}
            for name, message in exc.failed}
    return {"success": False, "expectation_config": config, "result": {}, "meta": {}, "exception_info": info}


class _Run:
    """One frame under one result format; columns are analysed once and shared by expectations."""

    def __init__(self, frame: Frame, fmt: dict[str, Any]):
        self.frame = frame
        self.fmt = fmt
        self.limit = int(fmt["partial_unexpected_count"])
        self.index_columns = fmt.get("unexpected_index_column_names")
        self._columns: dict[str, Column] = {}
        self._cache: dict[tuple[str, str], Any] = {}

    def column(self, name: str, metrics: tuple[str, ...]) -> Column:
        if name not in self.frame:
            raise MetricError([(m, f'Error: The column "{name}" in BatchData does not exist.') for m in metrics])
        if name not in self._columns:
            self._columns[name] = Column(self.frame[name])
        return self._columns[name]

    def duplicated(self, name: str) -> np.ndarray:
        if ("duplicated", name) not in self._cache:
            col = self._columns[name]
            self._cache["duplicated", name] = duplicated(col.values, col.nulls)
        return self._cache["duplicated", name]

    def distinct(self, name: str) -> int:
        if ("distinct", name) not in self._cache:
            col = self._columns[name]
            self._cache["distinct", name] = distinct(col.values, col.nulls)
        return self._cache["distinct", name]

    def evaluate(self, spec: Expectation, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        kind = spec.type
        if kind in MAP_METRIC:
            return self._column_map(kind, kwargs)
        if kind == "expect_column_pair_values_to_be_equal":
            return self._pair_equal(kwargs)
        if kind == "expect_table_row_count_to_equal":
            return len(self.frame) == kwargs["value"], {"observed_value": len(self.frame)}
        if kind == "expect_column_proportion_of_unique_values_to_be_between":
            return self._unique_proportion(kwargs)
        if kind == "expect_column_distinct_values_to_equal_set":
            return self._distinct_equal_set(kwargs)
        raise NotImplementedError(f"the native engine does not evaluate {kind} (see corpus/quality/native.py)")

    # -- column map expectations ----------------------------------------------------------------

    def _column_map(self, kind: str, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        metric = MAP_METRIC[kind]
        name = kwargs["column"]
        failing = ("column_values.nonnull.condition",) + (() if kind.endswith("not_be_null") else (f"{metric}.condition",))
        col = self.column(name, failing)
        n = len(col.values)
        mostly = kwargs.get("mostly", 1)
        if kind == "expect_column_values_to_not_be_null":
            unexpected = col.nulls
            count = int(unexpected.sum())
            success = True if n == 0 else (n - count) / n >= mostly
            return success, self._map_output(success, n, None, count, col, [name], unexpected)
        present = ~col.nulls
        unexpected = np.zeros(n, dtype=bool)
        unexpected[present] = ~self._condition(kind, col, kwargs, present, metric)
        nonnull = int(present.sum())
        count = int(unexpected.sum())
        success = True if n == 0 or nonnull == 0 else (nonnull - count) / nonnull >= mostly
        return success, self._map_output(success, n, nonnull, count, col, [name], unexpected)

    def _condition(self, kind: str, col: Column, kwargs: dict, present: np.ndarray, metric: str) -> np.ndarray:
        """Whether each present value meets the expectation."""
        values = col.values[present]
        if kind == "expect_column_values_to_be_between":
            return _between(col, values, kwargs, metric)
        if kind == "expect_column_values_to_be_unique":
            return ~self.duplicated(kwargs["column"])
        if kind == "expect_column_values_to_be_in_set":
            return _in_set(col, values, kwargs["value_set"])
        if kind == "expect_column_values_to_match_regex":
            search = re.compile(kwargs["regex"]).search
            return np.fromiter((search(v if type(v) is str else str(v)) is not None for v in values.tolist()),
                               dtype=bool, count=len(values))
        raise NotImplementedError(kind)

    def _map_output(self, success: bool, element_count: int, nonnull: int | None, unexpected_count: int,
                    col_or_pair, domain: list[str], unexpected: np.ndarray, pair: bool = False) -> dict[str, Any]:
        """GX's ``_format_map_output`` for SUMMARY: counts, percentages, the first unexpected rows."""
        rows = np.flatnonzero(unexpected)[: self.limit]
        if pair:
            a, b = col_or_pair
            values = list(zip(a.raw(rows), b.raw(rows)))
        else:
            values = col_or_pair.python(rows)
        result: dict[str, Any] = {"element_count": element_count, "unexpected_count": unexpected_count}
        missing = None if nonnull is None else element_count - nonnull
        missing_percent = percent_total = percent_nonmissing = None
        if element_count > 0:
            percent_total = unexpected_count / element_count * 100
            if missing is not None:
                missing_percent = missing / element_count * 100
                percent_nonmissing = unexpected_count / nonnull * 100 if nonnull else None
            else:
                percent_nonmissing = percent_total
        result["unexpected_percent"] = percent_nonmissing
        result["partial_unexpected_list"] = values
        if self.index_columns is not None:
            result["unexpected_index_column_names"] = self.index_columns
        if missing is not None:
            result.update(missing_count=missing, missing_percent=missing_percent,
                          unexpected_percent_total=percent_total, unexpected_percent_nonmissing=percent_nonmissing)
        try:
            result["partial_unexpected_counts"] = [
                {"value": key, "count": count}
                for key, count in sorted(Counter(values).most_common(self.limit), key=lambda x: (-x[1], x[0]))]
        except TypeError:  # values that do not sort: GX leaves the counts out
            pass
        result["partial_unexpected_index_list"] = self._index_list(rows, domain)
        return result

    def _index_list(self, rows: np.ndarray, domain: list[str]) -> list:
        if not self.index_columns:
            return rows.tolist()
        lists = {name: self._values_at(name, rows) for name in dict.fromkeys(domain + self.index_columns)}
        out = []
        for k in range(len(rows)):
            entry: dict[str, Any] = {}
            for name in domain:  # GX: each domain column, then the index columns (a pair: A, index, B)
                entry[name] = lists[name][k]
                for index in self.index_columns:
                    entry[index] = lists[index][k]
            out.append(entry)
        return out

    def _values_at(self, name: str, rows: np.ndarray) -> list:
        if name not in self._columns:
            self._columns[name] = Column(self.frame[name])
        return self._columns[name].python(rows)

    # -- pair, aggregate ------------------------------------------------------------------------

    def _pair_equal(self, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        names = [kwargs["column_A"], kwargs["column_B"]]
        metric = ("column_pair_values.equal.condition",)
        missing = [c for c in names if c not in self.frame]
        if missing:
            raise MetricError([(metric[0], f'Error: The column "{missing[0]}" in BatchData does not exist.')])
        a, b = (self.column(c, metric) for c in names)
        ignore = kwargs.get("ignore_row_if", "both_values_are_missing")
        if ignore == "both_values_are_missing":
            considered = ~(a.nulls & b.nulls)
        elif ignore == "either_value_is_missing":
            considered = ~(a.nulls | b.nulls)
        else:
            considered = np.ones(len(a.values), dtype=bool)
        unexpected = np.zeros(len(a.values), dtype=bool)
        unexpected[considered] = ~_equal(a, b, considered)
        n = len(a.values)
        filtered = int(considered.sum())
        count = int(unexpected.sum())
        mostly = kwargs.get("mostly", 1)
        success = True if n == 0 or filtered == 0 else (filtered - count) / filtered >= mostly
        return success, self._map_output(success, n, filtered, count, (a, b), names, unexpected, pair=True)

    def _unique_proportion(self, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        name = kwargs["column"]
        col = self.column(name, AGGREGATE_METRICS["expect_column_proportion_of_unique_values_to_be_between"])
        n = len(col.values)
        nulls = int(col.nulls.sum())
        value = self.distinct(name) / (n - nulls) if n > 0 and n != nulls else 0
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        above = True if low is None else (value > low if kwargs.get("strict_min") else value >= low)
        below = True if high is None else (value < high if kwargs.get("strict_max") else value <= high)
        return bool(above and below), {"observed_value": value}

    def _distinct_equal_set(self, kwargs: dict[str, Any]) -> tuple[bool, dict[str, Any]]:
        col = self.column(kwargs["column"], AGGREGATE_METRICS["expect_column_distinct_values_to_equal_set"])
        column_set = set(_unique_in_order(col))
        value_set = kwargs.get("value_set") or []
        expected = set(value_set)
        not_in_set = list(column_set - expected)
        try:
            not_in_set = sorted(not_in_set)
        except TypeError:  # mixed types: GX keeps the set's order
            pass
        missing = list(expected - column_set)
        result = {"observed_value": None, "unexpected_count": len(column_set - expected),
                  "missing_count": len(expected - column_set)}
        if self.limit > 0:
            result["partial_unexpected_list"] = not_in_set[:MAX_DISTINCT_VALUES]
            result["partial_missing_list"] = missing[:MAX_DISTINCT_VALUES]
        return result["unexpected_count"] == 0 and result["missing_count"] == 0, result


def _between(col: Column, values: np.ndarray, kwargs: dict, metric: str) -> np.ndarray:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    strict_low, strict_high = kwargs.get("strict_min"), kwargs.get("strict_max")
    failing = [(f"{metric}.condition", "")]
    if low is None and high is None:
        raise MetricError([(failing[0][0], "min_value and max_value cannot both be None")])
    if low is not None and high is not None and low > high:
        raise MetricError([(failing[0][0], "min_value cannot be greater than max_value")])
    if col.numeric:  # GX compares number columns vectorised; the same comparisons
        ok = np.ones(len(values), dtype=bool)
        if low is not None:
            ok &= values > low if strict_low else values >= low
        if high is not None:
            ok &= values < high if strict_high else values <= high
        return ok
    # GX maps a Python comparison over any other column, refusing text against number bounds
    items = values.tolist()
    for bound in (low, high):
        if bound is not None and any(isinstance(v, str) != isinstance(bound, str) for v in items):
            raise MetricError([(failing[0][0], MIXED_TYPES)])
    check: Callable[[Any], bool] = lambda v: ((low is None or (v > low if strict_low else v >= low))  # noqa: E731
                                              and (high is None or (v < high if strict_high else v <= high)))
    try:
        return np.fromiter((bool(check(v)) for v in items), dtype=bool, count=len(items))
    except TypeError as exc:
        raise MetricError([(failing[0][0], str(exc))]) from None


def _in_set(col: Column, values: np.ndarray, value_set) -> np.ndarray:
    if value_set is None:
        return np.ones(len(values), dtype=bool)
    if col.numeric:
        numbers = [v for v in value_set if isinstance(v, (bool, int, float, np.number, np.bool_))]
        return np.isin(values, np.asarray(numbers)) if numbers else np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "O" and all(type(v) is str for v in value_set):
        import polars as pl

        try:  # a text column (a strict conversion fails on anything but text): polars' hash join
            return pl.Series(values, dtype=pl.String, strict=True).is_in(list(value_set)).to_numpy()
        except (TypeError, pl.exceptions.PolarsError):
            pass  # mixed values: one by one below
    try:
        allowed = set(value_set)
        return np.fromiter((v in allowed for v in values.tolist()), dtype=bool, count=len(values))
    except TypeError:  # unhashable members: compare one by one
        return np.fromiter((any(v == w for w in value_set) for v in values.tolist()), dtype=bool, count=len(values))


def _equal(a: Column, b: Column, rows: np.ndarray) -> np.ndarray:
    """``column_A == column_B`` as pandas compares them (numbers by value, missing never equal)."""
    left, right = a.values[rows], b.values[rows]
    if a.numeric and b.numeric:
        return np.asarray(left == right, dtype=bool)
    if a.numeric != b.numeric and a.kind != "object" and b.kind != "object":
        return np.zeros(len(left), dtype=bool)  # a number column is never equal to a text column
    with np.errstate(invalid="ignore"):  # elementwise Python == (in C), a missing value never equal
        same = np.asarray(left == right, dtype=bool)
    return same & ~a.nulls[rows] & ~b.nulls[rows]


def _unique_in_order(col: Column) -> list:
    """Distinct present values in order of first appearance (what ``Series.dropna().unique()`` gives)."""
    present = np.flatnonzero(~col.nulls)
    if col.numeric:
        _, first = np.unique(col.values[present], return_index=True)
        return list(col.values[present][np.sort(first)])
    return list(dict.fromkeys(col.values[present].tolist()))


def _json(value):
    """GX's ``convert_to_json_serializable`` for the values a result holds."""
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json(v) for v in value]
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, np.generic):
        return _json(value.item())
    return value
