"""The per-row facts frame a suite validates: cheap columns computed from a shard, never tokens.

Suites check facts, not the token lists: per row the id, split, tier, declared and actual
lengths, min/max/sum of token ids (from the Parquet lists *and* from the memory-map sidecars,
which is what the loader reads), text lengths, JSON validity, image facts and a normalized-text
hash. Token statistics are numpy reductions over the flat value buffers (``reduceat``), text
facts are polars string kernels; the only per-row Python is the stable text hash and, for image
shards, decoding the images. The result is a :class:`~corpus.quality.frame.Frame` of numpy
columns (no pandas: the GX engine converts it itself).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.quality.frame import Frame

BASE_COLUMNS = ["id", "source", "split", "tier", "prompt_ids", "target_ids", "n_tokens", "prompt", "target",
                "features", "meta"]
IMAGE_COLUMNS = ["image", "image_width", "image_height"]


class FactsError(Exception):
    """The shard cannot even be turned into facts (unreadable file, missing or mistyped column)."""


@dataclass
class ShardFacts:
    rows: Frame         # one row per shard row
    schema: Frame       # one row per Parquet column
    with_image: bool


def schema_frame(parquet: Path):
    """One row per column of the Parquet file: ``column`` and ``signature`` ("name: type[ not null]")."""
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(parquet)
    except Exception as exc:  # pyarrow raises several types for corrupt files
        raise FactsError(f"unreadable Parquet: {str(exc).splitlines()[0][:200]}") from None
    return Frame({
        "column": np.asarray([f.name for f in schema], dtype=object),
        "signature": np.asarray([signature(f) for f in schema], dtype=object),
    })


def signature(field) -> str:
    """``name: type[ not null]``; list item names (``item``/``element``) do not matter."""
    import pyarrow as pa

    kind = field.type
    text = f"list<{kind.value_type}>" if pa.types.is_list(kind) or pa.types.is_large_list(kind) else str(kind)
    return f"{field.name}: {text}" + ("" if field.nullable else " not null")


def shard_facts(parquet: Path) -> ShardFacts:
    """Facts of one shard (Parquet file plus its ``.tokens.npy``/``.index.npy`` sidecars)."""
    import pyarrow.parquet as pq

    schema = schema_frame(parquet)
    names = set(schema["column"])
    missing = [c for c in BASE_COLUMNS if c not in names]
    if missing:
        raise FactsError(f"missing columns {missing}")
    with_image = all(c in names for c in IMAGE_COLUMNS)
    try:
        # ParquetFile, not read_table: read_table goes through pyarrow.dataset, which imports pandas (0.2 s)
        with pq.ParquetFile(parquet) as file:
            table = file.read(columns=BASE_COLUMNS + (IMAGE_COLUMNS if with_image else []))
    except Exception as exc:
        raise FactsError(f"unreadable Parquet: {str(exc).splitlines()[0][:200]}") from None
    n = table.num_rows
    frame = {"row": np.arange(n, dtype=np.int64)}
    frame.update(table_facts(table, with_image))
    frame.update(_sidecar_facts(parquet, n))
    return ShardFacts(Frame(frame), schema, with_image)


def written_facts(parquet: Path, rows: dict[str, np.ndarray], with_image: bool) -> ShardFacts:
    """The facts of a shard the build has just written, from the row facts it took on the rows
    (:func:`table_facts`, proven to be the file's by reading it back) plus what only the files
    say: the Parquet schema and the sidecars."""
    n = len(next(iter(rows.values()))) if rows else 0
    frame = {"row": np.arange(n, dtype=np.int64)}
    frame.update(rows)
    frame.update(_sidecar_facts(parquet, n))
    return ShardFacts(Frame(frame, rows=n), schema_frame(parquet), with_image)


def table_facts(table, with_image: bool) -> dict[str, np.ndarray]:
    """The row facts of Parquet rows (a pyarrow Table), all but the row number and the sidecar
    facts: a build computes them on the rows it writes, batch by batch, and proves the file reads
    back as exactly those rows (corpus.shards)."""
    frame = {}
    for name in ("id", "source", "split"):
        frame[name] = _strings(table, name)
    frame["tier"] = _ints(table, "tier")
    frame["n_tokens"] = _ints(table, "n_tokens")
    p_len, p_min, p_max, p_sum = _list_stats(table, "prompt_ids")
    t_len, t_min, t_max, t_sum = _list_stats(table, "target_ids")
    frame["prompt_len"] = p_len
    frame["target_len"] = t_len
    frame["token_count"] = p_len + t_len
    frame["min_token"] = np.fmin(p_min, t_min)
    frame["max_token"] = np.fmax(p_max, t_max)
    frame["token_sum"] = p_sum + t_sum
    frame.update(_text_facts(table, with_image))
    if with_image:
        frame.update(_image_facts(table))
    return frame


def _strings(table, name: str) -> np.ndarray:
    import pyarrow as pa

    column = table.column(name)
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        raise FactsError(f"column {name} is {column.type}, not string")
    return np.asarray(column.to_pylist(), dtype=object)


def _ints(table, name: str) -> np.ndarray:
    import pyarrow as pa

    column = table.column(name)
    if not pa.types.is_integer(column.type):
        raise FactsError(f"column {name} is {column.type}, not an integer")
    values = _numpy(column)
    return values.astype(np.float64) if column.null_count else values.astype(np.int64)


def _list_stats(table, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: length, min, max (NaN when empty) and sum of a list<int> column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    column = table.column(name)
    if not (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)) \
            or not pa.types.is_integer(column.type.value_type):
        raise FactsError(f"column {name} is {column.type}, not a list of integers")
    lengths = np.nan_to_num(_numpy(pc.list_value_length(column)), nan=0).astype(np.int64)  # a null list: 0
    values = _numpy(pc.list_flatten(column))
    return (lengths, *_reduce_rows(values, lengths))


def _numpy(column) -> np.ndarray:
    """An Arrow column as numpy (nulls as NaN), through polars: pyarrow's own ``to_numpy`` imports pandas."""
    import polars as pl

    return pl.from_arrow(column).to_numpy()


def _reduce_rows(values: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """min, max (float, NaN for empty rows) and int64 sum of consecutive runs of ``values``."""
    n = len(lengths)
    lo = np.full(n, np.nan)
    hi = np.full(n, np.nan)
    total = np.zeros(n, dtype=np.int64)
    nonempty = lengths > 0
    if nonempty.any():
        starts = (np.cumsum(lengths) - lengths)[nonempty]
        lo[nonempty] = np.minimum.reduceat(values, starts)
        hi[nonempty] = np.maximum.reduceat(values, starts)
        total[nonempty] = np.add.reduceat(values, starts, dtype=np.int64)
    return lo, hi, total


def _sidecar_facts(parquet: Path, n: int) -> dict[str, np.ndarray]:
    """What the loader would read: lengths and token statistics from the memory-map sidecars.

    A missing, unreadable or misaligned sidecar gives NaN columns (the suite's not-null
    expectation names it) rather than an exception.
    """
    nan = np.full(n, np.nan)
    out = {"sidecar_n_tokens": nan, "sidecar_prompt_len": nan, "sidecar_offset_ok": np.zeros(n, dtype=bool),
           "sidecar_min_token": nan, "sidecar_max_token": nan, "sidecar_token_sum": nan}
    try:
        from corpus.shards import open_sidecars

        tokens, index = open_sidecars(parquet)
    except Exception:
        return out
    if index.ndim != 2 or index.shape != (n, 3):
        return out
    starts, prompt_lens, lengths = (np.asarray(index[:, k], dtype=np.int64) for k in range(3))
    expected = np.cumsum(lengths) - lengths
    out["sidecar_n_tokens"] = lengths
    out["sidecar_prompt_len"] = prompt_lens
    out["sidecar_offset_ok"] = starts == expected
    if (lengths < 0).any() or int(lengths.sum()) != len(tokens):
        return out
    lo, hi, total = _reduce_rows(np.asarray(tokens), lengths)
    out.update(sidecar_min_token=lo, sidecar_max_token=hi, sidecar_token_sum=total)
    return out


# One in-memory DuckDB per process (opening one costs ~25 ms, a cursor on it ~1 ms), by pid: a
# forked child (a build worker, a DataLoader worker) opens its own and must neither use nor free
# its parent's — freeing it there joins threads the child does not have (a segfault).
_MEMORY_DB: dict[int, object] = {}
_MEMORY_LOCK = [threading.Lock()]


def _memory_db():
    with _MEMORY_LOCK[0]:
        con = _MEMORY_DB.get(os.getpid())
        if con is None:
            import duckdb

            con = _MEMORY_DB[os.getpid()] = duckdb.connect()
        return con


if hasattr(os, "register_at_fork"):  # a lock held by another thread at the fork stays held in the child
    os.register_at_fork(after_in_child=lambda: _MEMORY_LOCK.__setitem__(0, threading.Lock()))


def _text_facts(table, with_image: bool) -> dict[str, np.ndarray]:
    import polars as pl

    from corpus.quality.text import normalized, stable_hashes

    texts = pl.from_arrow(table.select(["prompt", "target"]))
    out = {
        "prompt_chars": texts["prompt"].str.strip_chars().str.len_chars().fill_null(0).to_numpy().astype(np.int64),
        "target_chars": texts["target"].str.strip_chars().str.len_chars().fill_null(0).to_numpy().astype(np.int64),
    }
    out["text_chars"] = out["prompt_chars"] + out["target_chars"]
    norm = normalized(texts["prompt"].fill_null("") + " " + texts["target"].fill_null(""))
    images = table.column("image").to_pylist() if with_image else None
    out["text_hash"] = stable_hashes(norm, images)
    con = _memory_db().cursor()  # a cursor: a connection of its own, to the process's one in-memory database
    try:
        con.register("json_table", table.select(["features", "meta"]))
        found = con.execute(
            "SELECT (CASE WHEN json_valid(features) THEN json_type(features) = 'OBJECT' ELSE false END) AND "
            "(CASE WHEN json_valid(meta) THEN json_type(meta) = 'OBJECT' ELSE false END) AS ok FROM json_table"
        ).fetchnumpy()
    finally:
        con.close()
    values = found["ok"]
    out["json_ok"] = values.filled(False).astype(bool) if hasattr(values, "filled") else np.asarray(values, dtype=bool)
    return out


def _image_facts(table) -> dict[str, np.ndarray]:
    """Declared size, and whether the bytes decode to an image of exactly that size."""
    import io

    from PIL import Image

    images = table.column("image").to_pylist()
    widths = table.column("image_width").to_pylist()
    heights = table.column("image_height").to_pylist()
    status = np.empty(len(images), dtype=object)
    for i, (data, w, h) in enumerate(zip(images, widths, heights)):
        if data is None:
            status[i] = None if w is None and h is None else "size without image"
            continue
        try:
            with Image.open(io.BytesIO(data)) as img:
                img.load()
                size = img.size
        except Exception:
            status[i] = "undecodable"
            continue
        status[i] = "ok" if size == (w, h) else f"decodes to {size[0]}x{size[1]}, declared {w}x{h}"
    to_float = lambda xs: np.asarray([np.nan if x is None else x for x in xs], dtype=np.float64)  # noqa: E731
    return {
        "has_image": np.asarray([d is not None for d in images], dtype=bool),
        "image_width": to_float(widths),
        "image_height": to_float(heights),
        "image_status": status,
    }
