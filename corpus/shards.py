"""Parquet token shards and their memory-map sidecars (docs/design.md, "Shard rows").

A :class:`ShardWriter` receives finished rows (already tokenized) as column batches and cuts
them into ``{split}-{NNNNN}.parquet`` files (an evaluation version: one split, as registered)
plus ``.mmap/<stem>.{tokens,index}.npy`` sidecars. The sidecars sit in a hidden folder so a
version directory is a plain Parquet dataset to other tools (``datasets.load_dataset("parquet",
data_dir=...)`` skips hidden paths). Every
file goes through write-temp, fsync, rename; the caller registers the returned
:class:`ShardFile` records only once the whole version is complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.atomic import atomic_path

SIDECAR_DIR = ".mmap"
ROWS_PER_SHARD = 100_000
TOKENS_PER_SHARD = 64 * 1024 * 1024


def shard_schema(with_image: bool = False) -> pa.Schema:
    fields = [
        pa.field("id", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("split", pa.string(), nullable=False),
        pa.field("tier", pa.int8(), nullable=False),
        pa.field("prompt_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("target_ids", pa.list_(pa.int32()), nullable=False),
        pa.field("n_tokens", pa.int32(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("target", pa.string(), nullable=False),
        pa.field("features", pa.string(), nullable=False),
        pa.field("meta", pa.string(), nullable=False),
    ]
    if with_image:
        fields += [
            pa.field("image", pa.binary()),
            pa.field("image_width", pa.int32()),
            pa.field("image_height", pa.int32()),
        ]
    return pa.schema(fields)


@dataclass
class RowBatch:
    """Tokenized rows in columnar form: one flat token array plus per-row lengths.

    ``tokens`` holds every row's prompt ids then its target ids, row after row: exactly the
    memory-map sidecar's layout. ``prompt_lens`` and ``target_lens`` cut it. Keeping tokens flat
    lets the writer build Arrow lists and the sidecars without a Python loop over tokens.
    """

    ids: list[str]
    tiers: np.ndarray
    tokens: np.ndarray
    prompt_lens: np.ndarray
    target_lens: np.ndarray
    prompts: list[str]
    targets: list[str]
    features: list[str]
    metas: list[str]
    images: list[bytes | None] | None = None
    image_widths: list[int | None] | None = None
    image_heights: list[int | None] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def n_tokens(self) -> np.ndarray:
        return self.prompt_lens + self.target_lens

    def _prompt_mask(self) -> np.ndarray:
        """True at the prompt positions of ``tokens``."""
        n = self.n_tokens
        within = np.arange(len(self.tokens), dtype=np.int64) - np.repeat(_offsets(n)[:-1], n)
        return within < np.repeat(self.prompt_lens, n)

    @property
    def prompt_tokens(self) -> np.ndarray:
        """Every row's prompt ids, concatenated."""
        return self.tokens[self._prompt_mask()]

    @property
    def target_tokens(self) -> np.ndarray:
        """Every row's target ids, concatenated."""
        return self.tokens[~self._prompt_mask()]

    def take(self, index: np.ndarray) -> "RowBatch":
        """The rows at ``index`` (sorted ascending), as a new batch."""
        index = np.asarray(index, dtype=np.int64)
        off = _offsets(self.n_tokens)
        pick = lambda xs: [xs[i] for i in index] if xs is not None else None  # noqa: E731
        tokens = (np.concatenate([self.tokens[off[i]:off[i + 1]] for i in index]) if len(index)
                  else self.tokens[:0])
        return RowBatch(
            ids=pick(self.ids), tiers=self.tiers[index], tokens=tokens,
            prompt_lens=self.prompt_lens[index], target_lens=self.target_lens[index],
            prompts=pick(self.prompts), targets=pick(self.targets),
            features=pick(self.features), metas=pick(self.metas),
            images=pick(self.images), image_widths=pick(self.image_widths), image_heights=pick(self.image_heights),
        )

    def slice(self, lo: int, hi: int) -> "RowBatch":
        """Rows ``lo:hi`` (contiguous, so the tokens are one view)."""
        off = _offsets(self.n_tokens)
        cut = lambda xs: xs[lo:hi] if xs is not None else None  # noqa: E731
        return RowBatch(
            ids=self.ids[lo:hi], tiers=self.tiers[lo:hi], tokens=self.tokens[off[lo]:off[hi]],
            prompt_lens=self.prompt_lens[lo:hi], target_lens=self.target_lens[lo:hi],
            prompts=self.prompts[lo:hi], targets=self.targets[lo:hi], features=self.features[lo:hi],
            metas=self.metas[lo:hi], images=cut(self.images), image_widths=cut(self.image_widths),
            image_heights=cut(self.image_heights),
        )

    @staticmethod
    def concat(batches: list["RowBatch"]) -> "RowBatch":
        if len(batches) == 1:
            return batches[0]
        flat = lambda name: [x for b in batches for x in (getattr(b, name) or [None] * len(b))]  # noqa: E731
        cat = lambda name: np.concatenate([getattr(b, name) for b in batches])  # noqa: E731
        return RowBatch(
            ids=flat("ids"), tiers=cat("tiers"), tokens=cat("tokens"), prompt_lens=cat("prompt_lens"),
            target_lens=cat("target_lens"), prompts=flat("prompts"), targets=flat("targets"),
            features=flat("features"), metas=flat("metas"), images=flat("images"),
            image_widths=flat("image_widths"), image_heights=flat("image_heights"),
        )


@dataclass
class Rows:
    """Rows on their way to a shard: the batch, its Parquet table and its row facts
    (:func:`corpus.quality.facts.table_facts`), computed once where the rows are made (a worker
    process with ``--workers``) and cut together."""

    batch: RowBatch
    table: pa.Table | None = None
    facts: dict[str, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.batch)

    ids = property(lambda self: self.batch.ids)
    prompts = property(lambda self: self.batch.prompts)
    targets = property(lambda self: self.batch.targets)
    n_tokens = property(lambda self: self.batch.n_tokens)

    def slice(self, lo: int, hi: int) -> "Rows":
        return Rows(self.batch.slice(lo, hi), None if self.table is None else self.table.slice(lo, hi - lo),
                    None if self.facts is None else {k: v[lo:hi] for k, v in self.facts.items()})

    def take(self, index: np.ndarray) -> "Rows":
        index = np.asarray(index, dtype=np.int64)
        return Rows(self.batch.take(index), None if self.table is None else self.table.take(index),
                    None if self.facts is None else {k: v[index] for k, v in self.facts.items()})

    @staticmethod
    def concat(parts: list["Rows"]) -> "Rows":
        if len(parts) == 1:
            return parts[0]
        tables = [r.table for r in parts]
        facts = [r.facts for r in parts]
        return Rows(RowBatch.concat([r.batch for r in parts]),
                    pa.concat_tables(tables) if all(t is not None for t in tables) else None,
                    {k: np.concatenate([f[k] for f in facts]) for k in facts[0]}
                    if all(f is not None for f in facts) else None)


def rows_table(batch: RowBatch, source: str, split: str, with_image: bool) -> pa.Table:
    """The Parquet rows of ``batch`` (arrays built from buffers: corpus.arrow)."""
    from corpus import arrow

    n = len(batch)
    mask = batch._prompt_mask()
    columns = [
        arrow.strings(batch.ids),
        arrow.repeated(source, n),
        arrow.repeated(split, n),
        arrow.numbers(batch.tiers.astype(np.int8)),
        arrow.lists(_offsets(batch.prompt_lens), batch.tokens[mask].astype(np.int32, copy=False)),
        arrow.lists(_offsets(batch.target_lens), batch.tokens[~mask].astype(np.int32, copy=False)),
        arrow.numbers(batch.n_tokens.astype(np.int32)),
        arrow.strings(batch.prompts),
        arrow.strings(batch.targets),
        arrow.strings(batch.features),
        arrow.strings(batch.metas),
    ]
    if with_image:
        columns += [pa.array(batch.images, pa.binary()), pa.array(batch.image_widths, pa.int32()),
                    pa.array(batch.image_heights, pa.int32())]
    return pa.Table.from_arrays(columns, schema=shard_schema(with_image))


def _rows_to_reach(n_tokens: np.ndarray, tokens: int) -> int:
    """How many leading rows it takes for their tokens to reach ``tokens`` (all + 1 if they never do)."""
    return int(np.searchsorted(np.cumsum(n_tokens), tokens)) + 1


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


@dataclass
class ShardFile:
    """One written shard with the facts the catalog records."""

    split: str
    idx: int
    parquet: Path
    tokens: Path
    index: Path
    rows: int
    tokens_total: int
    min_len: int
    max_len: int
    sha256: dict[str, str] = field(default_factory=dict)
    xxh3: dict[str, str] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)
    tier_counts: dict[int, tuple[int, int]] = field(default_factory=dict)
    facts: object = None  # corpus.quality.facts.ShardFacts when the build took them on the rows


ROW_GROUP_ROWS = 16_384
ROW_GROUP_TOKENS = 2 * 1024 * 1024  # ~10 MB of text and ids: small enough to stream out while encoding
# low-cardinality columns: dictionary pages pay off; text and token ids only cost time to try
DICTIONARY_COLUMNS = ["source", "split", "tier"]
STATISTICS_COLUMNS = ["id", "source", "split", "tier", "n_tokens"]


class ShardWriter:
    """Accumulates rows of one split and writes shards of bounded size into ``directory``.

    Rows stream out as Parquet row groups of ``ROW_GROUP_ROWS`` while the build goes on (the
    write overlaps tokenizing), so closing a shard writes only its last row group, the
    sidecars and the footer. Shard and row-group boundaries fall at fixed row counts (and the
    token bound), never at input batch boundaries: the bytes do not depend on ``--batch-size``
    or ``--workers``.
    """

    def __init__(self, directory: Path, source: str, split: str, token_dtype: str, with_image: bool = False,
                 rows_per_shard: int = ROWS_PER_SHARD, tokens_per_shard: int = TOKENS_PER_SHARD,
                 kind: str = "train", row_group_rows: int = ROW_GROUP_ROWS,
                 row_group_tokens: int = ROW_GROUP_TOKENS):
        self.directory = Path(directory)
        # an evaluation version is one split named as registered (test-NNNNN): Hugging Face's split
        # inference, polars and DuckDB then see each row once, under that split (eval-test-... would
        # also match "eval", and eval-train-... both train and test)
        self.stem = split
        self.source = source
        self.split = split
        self.token_dtype = np.dtype(token_dtype)
        self.schema = shard_schema(with_image)
        self.with_image = with_image
        self.rows_per_shard = rows_per_shard
        self.tokens_per_shard = tokens_per_shard
        self.row_group_rows = row_group_rows
        self.row_group_tokens = row_group_tokens
        self.pending: list[Rows] = []
        self.pending_rows = 0
        self.written: list[ShardFile] = []
        self._open: _OpenShard | None = None

    def add(self, batch: "RowBatch | Rows") -> None:
        """Queue rows (a RowBatch, or Rows with their table and facts) and write what is complete."""
        rows = batch if isinstance(batch, Rows) else Rows(batch)
        if len(rows) == 0:
            return
        self.pending.append(rows)
        self.pending_rows += len(rows)
        self._drain(final=False)

    def shard_of(self, batch: RowBatch) -> np.ndarray:
        """The index of the shard each row of ``batch`` will land in, were it added next."""
        batch = batch.batch if isinstance(batch, Rows) else batch
        idx = len(self.written)
        rows = (self._open.rows if self._open else 0) + self.pending_rows
        tokens = (self._open.tokens if self._open else 0) + sum(int(r.batch.n_tokens.sum()) for r in self.pending)
        out = np.empty(len(batch), dtype=np.int64)
        for i, n in enumerate(batch.n_tokens.tolist()):
            if rows >= self.rows_per_shard or tokens >= self.tokens_per_shard:
                idx, rows, tokens = idx + 1, 0, 0
            out[i] = idx
            rows, tokens = rows + 1, tokens + n
        return out

    def close(self) -> list[ShardFile]:
        self._drain(final=True)
        return self.written

    def _drain(self, final: bool) -> None:
        """Write every complete row group (and close every full shard) pending; with ``final``
        the rest too."""
        while self.pending_rows:
            shard = self._open or self._start()
            rows = Rows.concat(self.pending)
            n_tokens = rows.batch.n_tokens
            end = shard.rows_until_full(n_tokens, self.rows_per_shard, self.tokens_per_shard)
            # a row group ends at row_group_rows rows or at the row that reaches row_group_tokens
            group = min(self.row_group_rows, end, _rows_to_reach(n_tokens, self.row_group_tokens))
            if group > len(rows):
                if not final:  # wait for rows to fill the row group
                    self.pending = [rows]
                    return
                group = len(rows)
            shard.write(rows.slice(0, group), self)
            rest = rows.slice(group, len(rows))
            self.pending, self.pending_rows = ([rest] if len(rest) else []), len(rest)
            if group == end:  # the shard is full
                self._finish()
        if final and self._open is not None:
            self._finish()

    def _start(self) -> "_OpenShard":
        idx = len(self.written)
        self._open = _OpenShard(self.directory / f"{self.stem}-{idx:05d}.parquet", idx)
        return self._open

    def _finish(self) -> None:
        shard, self._open = self._open, None
        self.written.append(shard.close(self))

    def table(self, batch: RowBatch) -> pa.Table:
        return rows_table(batch, self.source, self.split, self.with_image)


class _OpenShard:
    """A shard being written: its Parquet temp file takes one row group at a time."""

    def __init__(self, parquet: Path, idx: int):
        self.parquet = parquet
        self.idx = idx
        self.tmp = parquet.with_name(f".{parquet.name}.tmp-{os.getpid()}")
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0
        self.tokens = 0
        self.pieces: list[np.ndarray] = []
        self.prompt_lens: list[np.ndarray] = []
        self.lengths: list[np.ndarray] = []
        self.tiers: list[np.ndarray] = []
        self.tables: list[pa.Table] = []  # what was written, to prove the file reads back as it
        self.facts: list[dict | None] = []

    def rows_until_full(self, n_tokens: np.ndarray, max_rows: int, max_tokens: int) -> int:
        """How many of the next rows this shard takes: up to ``max_rows`` in all, and up to the
        row that brings it to ``max_tokens``."""
        return int(min(max_rows - self.rows, _rows_to_reach(n_tokens, max_tokens - self.tokens)))

    def write(self, rows: Rows, owner: ShardWriter) -> None:
        batch = rows.batch
        table = rows.table if rows.table is not None else owner.table(batch)
        self.tables.append(table)
        self.facts.append(rows.facts)
        if self.writer is None:
            self.writer = pq.ParquetWriter(self.tmp, owner.schema, compression="zstd", compression_level=1,
                                           use_dictionary=DICTIONARY_COLUMNS, write_statistics=STATISTICS_COLUMNS)
        self.writer.write_table(table, row_group_size=len(batch))
        self.rows += len(batch)
        self.tokens += int(batch.n_tokens.sum())
        self.pieces.append(batch.tokens.astype(owner.token_dtype))
        self.prompt_lens.append(np.asarray(batch.prompt_lens, dtype=np.int64))
        self.lengths.append(np.asarray(batch.n_tokens, dtype=np.int64))
        self.tiers.append(np.asarray(batch.tiers))

    def close(self, owner: ShardWriter) -> ShardFile:
        from corpus.atomic import digest_file, fsync_dir, fsync_file

        self.writer.close()
        if all(f is not None for f in self.facts):  # facts were taken on the rows: check the file holds them
            _check_reads_back(self.tmp, self.parquet.name, self.tables)
        fsync_file(self.tmp)
        os.replace(self.tmp, self.parquet)
        fsync_dir(self.parquet.parent)
        lengths = np.concatenate(self.lengths)
        tokens = np.concatenate(self.pieces) if self.pieces else np.zeros(0, owner.token_dtype)
        index = np.stack([_offsets(lengths)[:-1], np.concatenate(self.prompt_lens), lengths], axis=1).astype(np.int64)
        tokens_path, index_path = sidecar_paths(self.parquet)
        tokens_path.parent.mkdir(exist_ok=True)
        for path, array in ((tokens_path, tokens), (index_path, index)):
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, array, allow_pickle=False)
        tiers = np.concatenate(self.tiers)
        shard = ShardFile(
            split=owner.split, idx=self.idx, parquet=self.parquet, tokens=tokens_path, index=index_path,
            rows=self.rows, tokens_total=int(lengths.sum()), min_len=int(lengths.min()), max_len=int(lengths.max()),
        )
        for tier in np.unique(tiers):
            mask = tiers == tier
            shard.tier_counts[int(tier)] = (int(mask.sum()), int(lengths[mask].sum()))
        for path in (self.parquet, tokens_path, index_path):  # keyed by the path inside the version directory
            name = str(path.relative_to(owner.directory))
            shard.sha256[name], shard.xxh3[name] = digest_file(path)
            shard.bytes[name] = path.stat().st_size
        if all(f is not None for f in self.facts):
            from corpus.quality.facts import written_facts

            shard.facts = written_facts(self.parquet, {k: np.concatenate([f[k] for f in self.facts])
                                                       for k in self.facts[0]}, owner.with_image)
        self.tables = []
        return shard


def _check_reads_back(path: Path, name: str, written: list[pa.Table]) -> None:
    """Read the Parquet file back and compare it with the rows written: the build validated
    those rows, so the file must hold exactly them."""
    with pq.ParquetFile(path) as f:
        back = f.read()
    if not back.equals(pa.concat_tables(written)):
        raise OSError(f"{name}: the Parquet file does not read back as the rows written (disk or library fault); "
                      "nothing registered")


def sidecar_paths(parquet_path: Path) -> tuple[Path, Path]:
    """``v/train-00000.parquet`` → ``v/.mmap/train-00000.tokens.npy``, ``v/.mmap/train-00000.index.npy``."""
    parquet_path = Path(parquet_path)
    stem = parquet_path.parent / SIDECAR_DIR / parquet_path.stem
    return stem.with_name(f"{stem.name}.tokens.npy"), stem.with_name(f"{stem.name}.index.npy")


def shard_key(path: str | Path) -> str:
    """The shard a file belongs to: ``v/train-00000`` for its Parquet file and both sidecars."""
    path = Path(path)
    folder = path.parent.parent if path.parent.name == SIDECAR_DIR else path.parent
    return str(folder / path.name.split(".")[0])


def open_sidecars(parquet_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Memory-map a shard's ``(tokens, index)`` sidecars."""
    tokens_path, index_path = sidecar_paths(parquet_path)
    return np.load(tokens_path, mmap_mode="r"), np.load(index_path, mmap_mode="r")
