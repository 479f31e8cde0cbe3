"""Arrow arrays from numpy arrays and Python strings, built from buffers.

``pyarrow.array`` probes every input for a pandas type, and the probe imports pandas (0.4-0.5 s)
the first time: a small build would spend a quarter of its time importing a library it never
uses. Building arrays from their buffers skips the probe and copies no more than
``pyarrow.array`` does.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_TYPES = {np.dtype(np.int8): pa.int8(), np.dtype(np.int16): pa.int16(), np.dtype(np.int32): pa.int32(),
          np.dtype(np.int64): pa.int64(), np.dtype(np.uint8): pa.uint8(), np.dtype(np.uint16): pa.uint16(),
          np.dtype(np.uint32): pa.uint32(), np.dtype(np.uint64): pa.uint64(), np.dtype(np.float64): pa.float64(),
          np.dtype(np.bool_): None}
MAX_OFFSET = (1 << 31) - 1


def numbers(values: np.ndarray) -> pa.Array:
    """A primitive array of a 1-d numpy array (no nulls)."""
    values = np.ascontiguousarray(values)
    if values.dtype == np.bool_:
        bits = np.packbits(values, bitorder="little")
        return pa.Array.from_buffers(pa.bool_(), len(values), [None, pa.py_buffer(bits)])
    return pa.Array.from_buffers(_TYPES[values.dtype], len(values), [None, pa.py_buffer(values)])


def lists(offsets: np.ndarray, values: np.ndarray) -> pa.Array:
    """``list<values>`` rows cut by ``offsets`` (len(rows) + 1, int32, starting at 0)."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int32)
    child = numbers(values)
    return pa.Array.from_buffers(pa.list_(child.type), len(offsets) - 1, [None, pa.py_buffer(offsets)],
                                 children=[child])


def strings(items: list, binary: bool = False) -> pa.Array:
    """A ``string`` (or ``binary``) array of a list of ``str`` (``bytes``); ``None`` is null."""
    if any(x is None for x in items) or not items:
        return pa.array(items, pa.binary() if binary else pa.string())  # rare: nulls, empty
    encoded = items if binary else [s.encode("utf-8") for s in items]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    offsets = np.zeros(len(encoded) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    kind = pa.binary() if binary else pa.string()
    if offsets[-1] > MAX_OFFSET:  # over 2 GiB: let pyarrow split it into chunks
        return pa.array(items, kind)
    data = b"".join(encoded)
    return pa.Array.from_buffers(kind, len(encoded), [None, pa.py_buffer(offsets.astype(np.int32)),
                                                      pa.py_buffer(data)])


def repeated(value: str, n: int) -> pa.Array:
    """``n`` copies of one string."""
    raw = value.encode("utf-8")
    offsets = np.arange(n + 1, dtype=np.int64) * len(raw)
    if offsets[-1] > MAX_OFFSET:
        return pa.array([value] * n, pa.string())
    return pa.Array.from_buffers(pa.string(), n, [None, pa.py_buffer(offsets.astype(np.int32)),
                                                  pa.py_buffer(raw * n)])
