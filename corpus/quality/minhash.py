"""Shingles and MinHash signatures of row texts: the per-row half of near-dedup.

A row's text (prompt and target) is normalized as for exact dedup (:mod:`corpus.quality.text`:
lower case, every run of non-letters/digits one space), then cut into shingles: word n-grams
(default 5 words, ``--near-dedup-shingle word``) or character n-grams of the normalized text
(``char``; counted in UTF-8 bytes, which is characters for ASCII text). A text shorter than one
shingle is one shingle of everything it has, so no non-empty row is left without a signature.

Shingle hashes are computed here, vectorized: polars' native hash of each word (stable within
one polars version, which is therefore part of :func:`library_id`) or each byte mixed by
splitmix64, combined over the n-gram by a polynomial and finished by splitmix64, so signatures
can be compared across processes and versions built with the same libraries. `rensa <https://github.com/beowolx/rensa>`_ (Rust) turns each row's
shingle hashes into ``num_perm`` 32-bit minima; it is pinned exactly, and its version and
algorithm number go into :func:`library_id`, which enters everything that depends on the values.
"""

from __future__ import annotations

import functools

import numpy as np

SHINGLES = ("word", "char")
DEFAULT_SHINGLE = "word"
DEFAULT_NGRAM = {"word": 5, "char": 7}
RENSA_VERSION = "0.5.0"  # pinned in pyproject.toml: a new release may change every signature

_GRAM_P = np.uint64(0x9E3779B97F4A7C15)   # odd multiplier combining the units of an n-gram
WORD_SEED = 25                            # polars' word hash seed


class MissingLibrary(RuntimeError):
    """rensa is not installed (a core dependency, missing from this environment): near-dedup cannot run."""


@functools.lru_cache(maxsize=1)
def rensa():
    """The rensa module, checked to be the pinned version (once per process)."""
    try:
        import rensa as module
        from importlib.metadata import version
    except ImportError:
        raise MissingLibrary(f"near-dedup needs rensa: pip install 'rensa=={RENSA_VERSION}' "
                             "(a dependency of hrm-corpus; this environment lacks it)") from None
    found = version("rensa")
    if found != RENSA_VERSION:
        raise MissingLibrary(f"near-dedup is pinned to rensa=={RENSA_VERSION} (its signatures enter version ids "
                             f"and caches), found {found}: pip install 'rensa=={RENSA_VERSION}'")
    return module


def library_id() -> str:
    """What computed the signatures (rensa, and polars, whose word hash is stable only within one
    of its versions): enters the version id of a build whose rows depend on them, and any cache."""
    import polars

    module = rensa()
    return f"rensa {RENSA_VERSION} algorithm {module.RMinHash.ALGORITHM_VERSION}; polars {polars.__version__}"


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer: spreads the bits of polynomial hashes (uint64 in, uint64 out)."""
    with np.errstate(over="ignore"):
        x = x ^ (x >> np.uint64(30))
        x = x * np.uint64(0xBF58476D1CE4E5B9)
        x = x ^ (x >> np.uint64(27))
        x = x * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _string_buffers(array) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, utf-8 bytes) of an Arrow string array, offsets rebased to the bytes."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if not (pa.types.is_string(array.type) or pa.types.is_large_string(array.type)):  # e.g. string_view
        array = array.cast(pa.large_string())
    width = np.int64 if pa.types.is_large_string(array.type) else np.int32
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], dtype=width)[array.offset:array.offset + len(array) + 1].astype(np.int64)
    data = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] is not None else np.zeros(0, np.uint8)
    return offsets - offsets[0], data[offsets[0]:offsets[-1]]


def _grams(unit_hashes: np.ndarray, offsets: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """n-gram hashes of each row's run of units (words or bytes), a row shorter than ``n`` as one
    gram of all its units: ``(flat hashes, row offsets)``."""
    lengths = np.diff(offsets)
    count = np.where(lengths >= n, lengths - n + 1, (lengths > 0).astype(np.int64))
    row_off = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(count, out=row_off[1:])
    out = np.zeros(int(row_off[-1]), dtype=np.uint64)
    m = len(unit_hashes)
    with np.errstate(over="ignore"):
        if m >= n:  # every n-gram of the flat run, then the ones inside a row are kept
            rolling = np.zeros(m - n + 1, dtype=np.uint64)
            for k in range(n):
                rolling = rolling * _GRAM_P + unit_hashes[k:k + m - n + 1]
            full = lengths >= n
            starts = np.repeat(offsets[:-1][full], count[full]) + (
                np.arange(int(count[full].sum())) - np.repeat(np.cumsum(count[full]) - count[full], count[full]))
            out[np.repeat(full, count)] = rolling[starts] + np.uint64(n)
        for r in np.flatnonzero((lengths < n) & (lengths > 0)):  # short rows: rare, one gram each
            h = np.uint64(0)
            for v in unit_hashes[offsets[r]:offsets[r + 1]]:
                h = h * _GRAM_P + v
            out[row_off[r]] = h + np.uint64(lengths[r])
    return _mix(out), row_off


def shingle_hashes(texts: list[str], shingle: str = DEFAULT_SHINGLE, n: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Every shingle hash of every text (normalized first): ``(flat uint64 hashes, row offsets)``.

    A shingle repeated inside a text appears once per occurrence (MinHash ignores repeats)."""
    import polars as pl

    from corpus.quality.text import WORD, normalized

    n = n or DEFAULT_NGRAM[shingle]
    if shingle == "word":  # the words of corpus.quality.text.words, hashed without leaving polars
        extracted = pl.Series("t", list(texts), dtype=pl.String).str.to_lowercase().str.extract_all(WORD)
        lengths = extracted.list.len().fill_null(0).to_numpy().astype(np.int64)
        word_off = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=word_off[1:])
        word_hashes = extracted.explode().drop_nulls().hash(seed=WORD_SEED).to_numpy()
        return _grams(word_hashes, word_off, n)
    if shingle == "char":
        norm = normalized(pl.Series("t", list(texts), dtype=pl.String)).to_arrow()
        offsets, data = _string_buffers(norm)
        return _grams(_mix(data.astype(np.uint64) + np.uint64(1)), offsets, n)
    raise ValueError(f"unknown shingle {shingle!r} (use one of {', '.join(SHINGLES)})")


def shingle_arrays(texts: list[str], shingle: str = DEFAULT_SHINGLE, n: int | None = None) -> list[np.ndarray]:
    """Each text's distinct shingle hashes, sorted (uint64): what the true Jaccard of a candidate
    pair is computed from (:func:`jaccard`)."""
    flat, offsets = shingle_hashes(texts, shingle, n)
    return [np.unique(flat[offsets[i]:offsets[i + 1]]) for i in range(len(texts))]


def signatures(texts: list[str], num_perm: int, seed: int = 0, shingle: str = DEFAULT_SHINGLE,
               n: int | None = None) -> np.ndarray:
    """``(len(texts), num_perm)`` uint32 MinHash signatures (rensa). An empty text's row is all
    0xFFFFFFFF, which :func:`corpus.quality.near_dedup.band_keys` never lets collide."""
    if not texts:
        return np.zeros((0, num_perm), dtype=np.uint32)
    flat, offsets = shingle_hashes(texts, shingle, n)
    matrix = rensa().RMinHash.digest_matrix_from_flat_token_hashes(
        np.ascontiguousarray(flat), offsets.astype(np.uint64), num_perm, seed)
    out = np.fromiter((v for row in matrix.to_rows() for v in row), dtype=np.uint32, count=len(texts) * num_perm)
    out = out.reshape(len(texts), num_perm)
    out[np.diff(offsets) == 0] = np.iinfo(np.uint32).max
    return out


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """True Jaccard similarity of two sorted distinct shingle arrays (two empty ones: 0, never a
    duplicate)."""
    shared = np.intersect1d(a, b, assume_unique=True).size
    union = a.size + b.size - shared
    return shared / union if union else 0.0
