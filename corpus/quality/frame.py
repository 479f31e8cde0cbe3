"""A plain columnar frame: named numpy arrays of one length, the facts a suite validates.

What the facts, the version-level frame and the native engine pass around, so none of them
needs pandas (0.5 s to import). :meth:`Frame.to_pandas` builds the DataFrame the GX engine
validates, :meth:`Frame.to_polars` the table DuckDB reads. :func:`factorize` and
:func:`null_mask` carry pandas' meaning of "missing" (None and NaN) and of "equal" (hash
equality of Python objects; NaN never a value) over to numpy.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np


class Frame:
    """Columns by name, all of one length; a column is a 1-d numpy array (object for text)."""

    __slots__ = ("_columns", "_rows")

    def __init__(self, columns: dict[str, np.ndarray] | None = None, rows: int | None = None):
        self._columns: dict[str, np.ndarray] = {}
        self._rows = rows
        for name, values in (columns or {}).items():
            self[name] = values

    @property
    def columns(self) -> list[str]:
        return list(self._columns)

    def __len__(self) -> int:
        return self._rows or 0

    def __contains__(self, name: object) -> bool:
        return name in self._columns

    def __getitem__(self, name: str) -> np.ndarray:
        return self._columns[name]

    def __setitem__(self, name: str, values) -> None:
        array = np.asarray(values)
        if array.ndim != 1:
            raise ValueError(f"column {name}: a column is 1-d, got shape {array.shape}")
        if self._rows is None:
            self._rows = len(array)
        elif len(array) != self._rows:
            raise ValueError(f"column {name}: {len(array)} values for a frame of {self._rows} rows")
        self._columns[name] = array

    def items(self) -> Iterator[tuple[str, np.ndarray]]:
        return iter(self._columns.items())

    def select(self, names: Iterable[str]) -> "Frame":
        return Frame({name: self._columns[name] for name in names}, rows=len(self))

    @classmethod
    def concat(cls, frames: list["Frame"], columns: list[str]) -> "Frame":
        """Rows of ``frames`` one after the other (each must hold ``columns``)."""
        if not frames:
            return cls({name: np.zeros(0, dtype=object) for name in columns}, rows=0)
        return cls({name: np.concatenate([f[name] for f in frames]) for name in columns})

    def equals(self, other: "Frame") -> bool:
        """Same columns in the same order, same dtypes, same values (missing where the other is missing)."""
        if not isinstance(other, Frame) or self.columns != other.columns or len(self) != len(other):
            return False
        for name, values in self._columns.items():
            theirs = other[name]
            if values.dtype != theirs.dtype:
                return False
            nulls = null_mask(values)
            if not np.array_equal(nulls, null_mask(theirs)):
                return False
            if values.dtype.kind == "O":
                if any(a != b for a, b in zip(values[~nulls].tolist(), theirs[~nulls].tolist())):
                    return False
            elif not np.array_equal(values[~nulls], theirs[~nulls]):
                return False
        return True

    def to_pylist(self) -> list[dict]:
        """One dict per row, numpy scalars as Python values."""
        lists = {name: values.tolist() for name, values in self._columns.items()}
        return [dict(zip(lists, row)) for row in zip(*lists.values())] if lists else []

    def to_pandas(self):
        """The DataFrame the GX engine validates (pandas infers its dtypes from the arrays)."""
        import pandas as pd

        return pd.DataFrame(dict(self._columns))

    def to_polars(self, names: Iterable[str] | None = None):
        """A polars DataFrame of ``names`` (what DuckDB reads; pyarrow's constructors import pandas)."""
        import polars as pl

        names = list(self._columns) if names is None else list(names)
        return pl.DataFrame({name: pl.Series(name, self._columns[name]) for name in names})


def null_mask(values: np.ndarray) -> np.ndarray:
    """Where pandas' ``isnull`` is true: NaN in float columns; None or NaN in object columns."""
    kind = values.dtype.kind
    if kind in "fc":
        return np.isnan(values)
    if kind == "O":
        with np.errstate(invalid="ignore"):  # elementwise in C: None, and anything unequal to itself (NaN)
            return np.asarray((values == None) | (values != values), dtype=bool)  # noqa: E711
    if kind in "mM":
        return np.isnat(values)
    return np.zeros(len(values), dtype=bool)


def factorize(values: np.ndarray, nulls: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """(codes, distinct): equal values share a code in ``0..distinct-1``; nulls get -1.

    Numbers compare by value (1 and 1.0 are one value, as in pandas), text by content.
    Object columns of text are ranked by polars; anything else goes through a dict.
    """
    n = len(values)
    codes = np.full(n, -1, dtype=np.int64)
    nulls = null_mask(values) if nulls is None else nulls
    valid = ~nulls
    if values.dtype.kind != "O":
        if valid.any():
            _, inverse = np.unique(values[valid], return_inverse=True)
            codes[valid] = inverse
            return codes, int(inverse.max()) + 1
        return codes, 0
    present = values[valid]
    if len(present) and all(type(v) is str for v in present[: min(len(present), 64)]):
        import polars as pl

        try:
            ranks = pl.Series(present, dtype=pl.String, strict=True).rank("dense").to_numpy().astype(np.int64)
        except (TypeError, pl.exceptions.PolarsError):
            pass  # not all text after all: the general path below
        else:
            codes[valid] = ranks - 1
            return codes, int(ranks.max())
    seen: dict = {}
    codes[valid] = [seen.setdefault(v, len(seen)) for v in present]
    return codes, len(seen)


def duplicated(values: np.ndarray, nulls: np.ndarray) -> np.ndarray:
    """Over the present values (``values[~nulls]``): is this value also somewhere else?
    (pandas' ``duplicated(keep=False)``: every copy is marked)."""
    present = values[~nulls]
    if len(present) == 0:
        return np.zeros(0, dtype=bool)
    if present.dtype.kind != "O":
        order = np.argsort(present, kind="stable")
        ranked = present[order]
        same = ranked[1:] == ranked[:-1]
        marked = np.zeros(len(present), dtype=bool)
        marked[1:] |= same
        marked[:-1] |= same
        out = np.empty(len(present), dtype=bool)
        out[order] = marked
        return out
    codes, count = factorize(present, np.zeros(len(present), dtype=bool))  # polars' rank: ~8x its is_duplicated
    return np.bincount(codes, minlength=count)[codes] > 1


def distinct(values: np.ndarray, nulls: np.ndarray) -> int:
    """How many distinct present values (pandas' ``nunique``)."""
    present = values[~nulls]
    if len(present) == 0:
        return 0
    if present.dtype.kind in "iu":  # exact for integers, and half the time of a sort
        import polars as pl

        return int(pl.Series(present).n_unique())
    if present.dtype.kind != "O":  # floats: by value (0.0 and -0.0 are one)
        ranked = np.sort(present)
        return 1 + int(np.count_nonzero(ranked[1:] != ranked[:-1]))
    return factorize(present, np.zeros(len(present), dtype=bool))[1]
