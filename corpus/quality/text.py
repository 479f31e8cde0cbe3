"""Text normalization shared by dedup and decontamination, and the hashes built on it.

Normalized text is lower-cased, every run of characters that are not letters or digits becomes
one space, and the ends are stripped: ``"Hello,  World!"`` and ``"hello world"`` are the same
text. Row hashes (exact dedup) are 64-bit BLAKE2b of that text, stable across machines and
library versions, so they can be stored and compared across versions. Word n-gram hashes
(decontamination) are only compared inside one process and use polars' fast hash.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

import numpy as np

WORD = r"[\p{L}\p{N}]+"
NON_WORD = r"[^\p{L}\p{N}]+"
_P = np.uint64(0x100000001B3)  # odd multiplier of the rolling n-gram hash (FNV prime)


def normalized(texts):
    """A polars Series of normalized texts (see module doc); ``texts`` is a Series or list."""
    import polars as pl

    series = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.String)
    return series.str.to_lowercase().str.replace_all(NON_WORD, " ").str.strip_chars()


def normalize_one(text: str) -> str:
    """The normalized form of one string (same rule as :func:`normalized`)."""
    return normalized([text])[0]


def stable_hashes(norm, extra: Sequence[bytes | None] | None = None) -> np.ndarray:
    """int64 BLAKE2b-64 of each normalized text (plus ``extra`` bytes, e.g. an image, when given)."""
    blake = hashlib.blake2b
    values = norm.to_list() if hasattr(norm, "to_list") else list(norm)
    out = np.empty(len(values), dtype=np.int64)
    if extra is None:
        for i, s in enumerate(values):
            out[i] = int.from_bytes(blake((s or "").encode(), digest_size=8).digest(), "little", signed=True)
    else:
        for i, (s, b) in enumerate(zip(values, extra)):
            h = blake((s or "").encode(), digest_size=8)
            if b is not None:
                h.update(b"\x00image\x00" + hashlib.sha256(b).digest())
            out[i] = int.from_bytes(h.digest(), "little", signed=True)
    return out


def words(texts) -> tuple[list[str], np.ndarray]:
    """Normalized words of each text, flattened, and ``offsets`` (len(texts)+1) cutting them."""
    import polars as pl
    import pyarrow as pa
    import pyarrow.compute as pc

    series = texts if isinstance(texts, pl.Series) else pl.Series("text", list(texts), dtype=pl.String)
    extracted = series.str.to_lowercase().str.extract_all(WORD)
    # lengths through polars: pyarrow's fill_null/to_numpy import pandas (0.5 s of every build)
    lengths = extracted.list.len().fill_null(0).to_numpy().astype(np.int64)
    lists = extracted.to_arrow()
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    flat = pc.list_flatten(lists)
    return flat, offsets


def ngram_hashes(texts, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, object]:
    """Every word n-gram of every text: ``(row, start, hash, flat_words)``.

    ``start`` indexes ``flat_words`` (an Arrow string array), so a hit can be shown as text.
    Texts with fewer than ``n`` words have no n-grams. Hashes are uint64, a rolling polynomial
    over polars word hashes: valid within one process only (never store them).
    """
    import polars as pl

    flat, offsets = words(texts)
    m = len(flat)
    empty = np.zeros(0, dtype=np.int64)
    if m < n:
        return empty, empty, np.zeros(0, dtype=np.uint64), flat
    word_hash = pl.Series("w", flat).hash(seed=13).to_numpy()
    count = m - n + 1
    rolling = np.zeros(count, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(n):
            rolling = rolling * _P + word_hash[k : k + count]
    starts = np.arange(count, dtype=np.int64)
    rows = np.searchsorted(offsets, starts, side="right") - 1
    valid = starts + n <= offsets[rows + 1]
    return rows[valid], starts[valid], rolling[valid], flat
