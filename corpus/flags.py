"""Range checks for numeric command-line flags: a value outside its range is one line, not a
traceback later (islice, IndexError) or a silently useless version (zero-token rows)."""

from __future__ import annotations

import sys

from corpus.errors import UserError


def check_range(flag: str, value, lo=None, hi=None, *, hi_open: bool = False, lo_open: bool = False) -> None:
    """Raise a one-line :class:`UserError` unless ``lo <= value <= hi`` (open ends as asked)."""
    if value is None:
        return
    below = lo is not None and (value <= lo if lo_open else value < lo)
    above = hi is not None and (value >= hi if hi_open else value > hi)
    if below or above or value != value:  # NaN compares false both ways
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        shown = "-inf" if lo is None else f"{lo:g}"
        top = "inf" if hi is None else f"{hi:g}"
        raise UserError(f"{flag} {value!r} is out of range: must be in {left}{shown}, {top}{right}")


MAX_COUNT = sys.maxsize  # itertools.islice and numpy sizes stop here


def check_build_flags(args) -> None:
    """Every numeric flag of ``corpus.build`` (the source's own flags are checked by the source)."""
    check_range("--limit", args.limit, 0, MAX_COUNT)
    check_range("--max-seq-len", args.max_seq_len, 4, 1 << 24)  # bos, a prompt token, a target token, eos
    check_range("--val-ratio", args.val_ratio, 0, 1, hi_open=True)
    check_range("--max-bad-ratio", args.max_bad_ratio, 0, 1)
    check_range("--workers", args.workers, 1, 1024)
    check_range("--threads", args.threads, 1, 1024)
    check_range("--batch-size", args.batch_size, 1, 1 << 24)
    check_range("--seed", args.seed, 0, (1 << 63) - 1)
    check_range("--max-dup-rate", getattr(args, "max_dup_rate", None), 0, 1)
    check_range("--ngram", getattr(args, "ngram", None), 1, 64)
    check_range("--min-overlap", getattr(args, "min_overlap", None), 0, 1, lo_open=True)
    check_range("--stride", getattr(args, "stride", None), 0, None)
    check_range("--prompt-ratio", getattr(args, "prompt_ratio", None), 0, 1)
    check_range("--count", getattr(args, "count", None), 1, MAX_COUNT)


def ratio_text(value: float, limit: float) -> tuple[str, str]:
    """``value`` and ``limit`` as percentages with enough digits that they visibly differ
    (``1.04%`` and ``1%``, never ``1.0%`` and ``1.0%``)."""
    for digits in range(0, 7):
        if f"{value:.{digits}%}" != f"{limit:.{digits}%}":
            break
    return f"{value:.{digits}%}", _trim(f"{limit:.{digits}%}")


def _trim(text: str) -> str:
    number = text.rstrip("%")
    return (number.rstrip("0").rstrip(".") if "." in number else number) + "%"
