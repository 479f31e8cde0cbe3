"""Raw records from the Hugging Face hub or local files, each tagged with where it came from.

Hub datasets go through Hugging Face ``datasets``. Local files are read directly, every build
(``datasets``' cache is keyed by path and mtime, not by content): JSON Lines and text line by
line, so a malformed line or invalid UTF-8 becomes an :class:`Unreadable` record that the
builder quarantines with ``file:line`` instead of aborting the file; Parquet and Arrow through
pyarrow in record batches.
"""

from __future__ import annotations

import glob
import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from corpus.errors import UserError
from corpus.sources.base import RawRecord

SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".arrow", ".txt", ".txt.gz")


@dataclass(frozen=True)
class Unreadable:
    """A record that could not even be parsed (malformed JSON, invalid UTF-8)."""

    reason: str
    field: str | None = None


def expand_paths(patterns: list[str], suffixes: tuple[str, ...] = SUFFIXES) -> list[Path]:
    """Files named by paths, globs or directories (recursively, known suffixes), sorted."""
    out: list[Path] = []
    for pattern in patterns:
        if str(pattern).startswith("s3://"):  # read through fsspec (corpus.storage.inputs)
            from corpus.storage.inputs import stage_input

            out.extend(stage_input(str(pattern), suffixes))
            continue
        p = Path(pattern)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.name.endswith(suffixes))
            if not found:
                raise UserError(f"no input files ({', '.join(suffixes)}) under {p}")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif p.exists():  # /dev/null, a FIFO, a socket: nothing a build can fingerprint and read
            raise UserError(f"--from {pattern}: not a regular file or directory")
        else:
            matches = sorted(glob.glob(pattern, recursive=True))
            if not matches:
                raise UserError(f"input not found: {pattern}")
            regular = [Path(m) for m in matches if Path(m).is_file()]
            if not regular:
                raise UserError(f"--from {pattern}: matches no regular files ({len(matches)} other entries)")
            out.extend(regular)
    for path in out:
        if not os.access(path, os.R_OK):
            raise UserError(f"--from {path}: not readable (permission denied)")
    return out


def file_format(path: Path) -> str:
    name = path.name
    for fmt, ends in (("json", (".jsonl", ".jsonl.gz", ".json", ".json.gz")), ("parquet", (".parquet",)),
                      ("arrow", (".arrow",)), ("text", (".txt", ".txt.gz"))):
        if name.endswith(ends):
            return fmt
    raise UserError(f"unsupported input format: {path} (use {', '.join(SUFFIXES)})")


def load_records(paths: list[str] | None, split: str = "train", hub_id: str | None = None,
                 hub_config: str | None = None, revision: str | None = None) -> Iterator[RawRecord]:
    """Records from ``paths`` (``--from``) or, when None, from the hub dataset ``hub_id`` at
    ``revision`` (the commit :mod:`corpus.hub` resolved)."""
    if paths is None:
        yield from _hub_records(hub_id, hub_config, split, revision)
        return
    for path in expand_paths(paths):
        yield from file_records(path)


def file_records(path: Path) -> Iterator[RawRecord]:
    """Records of one local file, read from its bytes on every build (no cache).

    A cache keyed on path and mtime (``datasets``') hands back the old rows of a file rewritten
    with its size and mtime kept, under the new content's version id; reading the file itself
    keeps what a build holds equal to what it fingerprinted.
    """
    fmt = file_format(path)
    if path.stat().st_size == 0:
        return
    if fmt == "json":
        if path.name.endswith((".json", ".json.gz")):
            document = _json_document(path)
            if document is not None:
                yield from _json_document_records(path, document)
                return
        yield from iter_json_records(path)
    elif fmt == "text":
        yield from iter_text_records(path)
    else:
        yield from _table_records(fmt, path)


def _table_records(fmt: str, path: Path, batch_rows: int = 4096) -> Iterator[RawRecord]:
    """Rows of a Parquet or Arrow (IPC stream or file) table, read in record batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        if fmt == "parquet":
            batches = pq.ParquetFile(path).iter_batches(batch_size=batch_rows)
        else:
            batches = iter(_arrow_reader(pa, path))
        i = 0
        for batch in batches:
            for row in batch.to_pylist():
                yield RawRecord(f"{path}#{i}", row)
                i += 1
    except (pa.ArrowException, OSError, UnicodeDecodeError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read {path}: {fmt} file is corrupt or unreadable ({first[:120]})") from None


def _arrow_reader(pa, path: Path):
    """``datasets`` writes Arrow IPC streams; other tools write IPC files: accept both."""
    try:
        return pa.ipc.open_stream(pa.memory_map(str(path)))
    except pa.ArrowInvalid:
        reader = pa.ipc.open_file(pa.memory_map(str(path)))
        return (reader.get_batch(i) for i in range(reader.num_record_batches))


def _hub_records(hub_id: str | None, hub_config: str | None, split: str,
                 revision: str | None = None) -> Iterator[RawRecord]:
    if not hub_id:
        raise UserError("this source has no hub dataset: pass --from PATH")
    import datasets

    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(hub_id, hub_config, split=split, revision=revision)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        offline = " (offline: HF_HUB_OFFLINE is set)" if os.environ.get("HF_HUB_OFFLINE") == "1" else ""
        raise UserError(f"cannot load {hub_id} split {split} from the hub{offline}: {first[:160]}; "
                        f"pass --from PATH with local files") from None
    for i, row in enumerate(ds):
        yield RawRecord(f"hub:{hub_id}:{split}#{i}", row)


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _json_document(path: Path) -> object | None:
    """The parsed content of a ``.json`` file holding one array or object; None for JSON Lines."""
    import orjson

    with _open_bytes(path) as f:
        raw = f.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None


def _json_document_records(path: Path, doc: object) -> Iterator[RawRecord]:
    """A JSON array of records, or an object mapping keys to records (``_key`` added)."""
    if isinstance(doc, list):
        for i, rec in enumerate(doc):
            yield RawRecord(f"{path}#{i}", rec)
    elif isinstance(doc, dict) and doc and all(isinstance(v, dict) for v in doc.values()):
        for key, rec in doc.items():
            yield RawRecord(f"{path}#{key}", {"_key": key, **rec})
    elif isinstance(doc, dict):
        yield RawRecord(f"{path}#0", doc)
    else:
        raise UserError(f"{path}: expected a JSON array or object of records, got {type(doc).__name__}")


# A JSON line longer than this, or an object with more keys, is quarantined unparsed: a
# pathological record costs bounded time and memory (real records are a few KB, a few dozen keys).
MAX_RECORD_BYTES = 64 << 20
MAX_RECORD_KEYS = 10_000


def _lines(f, limit: int = MAX_RECORD_BYTES) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) with at most ``limit`` bytes held; an overlong line yields None."""
    lineno = 0
    while True:
        line = f.readline(limit + 1)
        if not line:
            return
        lineno += 1
        if len(line) > limit and not line.endswith(b"\n"):
            while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield lineno, None
            continue
        yield lineno, line


def _too_wide(value: object) -> bool:
    return isinstance(value, dict) and len(value) > MAX_RECORD_KEYS


def iter_json_records(path: Path) -> Iterator[RawRecord]:
    """JSON Lines read line by line; malformed, invalid UTF-8 or pathological lines become
    :class:`Unreadable` records."""
    import orjson

    with _open_bytes(path) as f:
        for lineno, line in _lines(f):
            ref = f"{path}:{lineno}"
            if line is None:
                yield RawRecord(ref, Unreadable(f"record longer than {MAX_RECORD_BYTES >> 20} MiB"))
                continue
            if not line.strip():
                continue
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield RawRecord(ref, Unreadable(f"invalid UTF-8 at byte {exc.start}"))
                continue
            try:
                value = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                yield RawRecord(ref, Unreadable(f"malformed JSON: {str(exc).split(':')[0]}"))
                continue
            if _too_wide(value):
                yield RawRecord(ref, Unreadable(f"record has {len(value)} keys (more than {MAX_RECORD_KEYS})"))
                continue
            yield RawRecord(ref, value)


def iter_text_records(path: Path) -> Iterator[RawRecord]:
    """Text lines (with their line breaks); lines with invalid UTF-8 become :class:`Unreadable`."""
    with _open_bytes(path) as f:
        for lineno, line in _lines(f):
            ref = f"{path}:{lineno}"
            if line is None:
                yield RawRecord(ref, Unreadable(f"line longer than {MAX_RECORD_BYTES >> 20} MiB"))
                continue
            try:
                yield RawRecord(ref, {"text": line.decode("utf-8")})
            except UnicodeDecodeError as exc:
                yield RawRecord(ref, Unreadable(f"invalid UTF-8 at byte {exc.start}"))


def get_path(record: object, path: str) -> object:
    """Follow a dotted path with list indexes, e.g. ``data.answers.text[0]``.

    Raises KeyError/IndexError/TypeError naming the missing step.
    """
    current = record
    for part in path.split("."):
        name, _, rest = part.partition("[")
        if name:
            if not isinstance(current, dict) or name not in current:
                raise KeyError(f"missing field {name!r}")
            current = current[name]
        while rest:
            index_text, _, rest = rest.partition("]")
            rest = rest.lstrip("[")
            if not isinstance(current, (list, tuple)):
                raise TypeError(f"{name or 'value'} is {type(current).__name__}, not a list")
            index = int(index_text)
            if not -len(current) <= index < len(current):
                raise IndexError(f"index {index} out of range (length {len(current)})")
            current = current[index]
    return current
