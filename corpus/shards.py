"""Parquet token shards and their memory-map sidecars (docs/design.md, "Shard rows").

A :class:`ShardWriter` receives finished rows (already tokenized) as column batches and cuts
them into ``{split}-{NNNNN}.parquet`` files plus ``.mmap/{split}-{NNNNN}.{tokens,index}.npy``
sidecars. The sidecars sit in a hidden folder so a version directory is a plain Parquet dataset
to other tools (``datasets.load_dataset("parquet", data_dir=...)`` skips hidden paths). Every
file goes through write-temp, fsync, rename; the caller registers the returned
:class:`ShardFile` records only once the whole version is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from corpus.atomic import atomic_path, sha256_file

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
    """Tokenized rows in columnar form: flat token arrays plus per-row lengths.

    ``prompt_tokens``/``target_tokens`` are the concatenation of every row's ids; ``prompt_lens``
    and ``target_lens`` cut them. Keeping tokens flat lets the writer build Arrow lists and the
    sidecars without a Python loop over tokens.
    """

    ids: list[str]
    tiers: np.ndarray
    prompt_tokens: np.ndarray
    prompt_lens: np.ndarray
    target_tokens: np.ndarray
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

    def take(self, index: np.ndarray) -> "RowBatch":
        """The rows at ``index`` (sorted ascending), as a new batch."""
        p_off = _offsets(self.prompt_lens)
        t_off = _offsets(self.target_lens)
        pick = lambda xs: [xs[i] for i in index] if xs is not None else None  # noqa: E731
        return RowBatch(
            ids=pick(self.ids),
            tiers=self.tiers[index],
            prompt_tokens=_gather(self.prompt_tokens, p_off, index),
            prompt_lens=self.prompt_lens[index],
            target_tokens=_gather(self.target_tokens, t_off, index),
            target_lens=self.target_lens[index],
            prompts=pick(self.prompts),
            targets=pick(self.targets),
            features=pick(self.features),
            metas=pick(self.metas),
            images=pick(self.images),
            image_widths=pick(self.image_widths),
            image_heights=pick(self.image_heights),
        )


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _gather(flat: np.ndarray, offsets: np.ndarray, index: np.ndarray) -> np.ndarray:
    if len(index) == 0:
        return flat[:0]
    return np.concatenate([flat[offsets[i] : offsets[i + 1]] for i in index])


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
    bytes: dict[str, int] = field(default_factory=dict)
    tier_counts: dict[int, tuple[int, int]] = field(default_factory=dict)


class ShardWriter:
    """Accumulates rows of one split and writes shards of bounded size into ``directory``."""

    def __init__(self, directory: Path, source: str, split: str, token_dtype: str, with_image: bool = False,
                 rows_per_shard: int = ROWS_PER_SHARD, tokens_per_shard: int = TOKENS_PER_SHARD):
        self.directory = Path(directory)
        self.source = source
        self.split = split
        self.token_dtype = np.dtype(token_dtype)
        self.schema = shard_schema(with_image)
        self.with_image = with_image
        self.rows_per_shard = rows_per_shard
        self.tokens_per_shard = tokens_per_shard
        self.pending: list[RowBatch] = []
        self.pending_rows = 0
        self.pending_tokens = 0
        self.written: list[ShardFile] = []

    def add(self, batch: RowBatch) -> None:
        if len(batch) == 0:
            return
        self.pending.append(batch)
        self.pending_rows += len(batch)
        self.pending_tokens += int(batch.n_tokens.sum())
        if self.pending_rows >= self.rows_per_shard or self.pending_tokens >= self.tokens_per_shard:
            self._flush()

    def close(self) -> list[ShardFile]:
        if self.pending_rows:
            self._flush()
        return self.written

    def _flush(self) -> None:
        batches, self.pending = self.pending, []
        self.pending_rows = self.pending_tokens = 0
        idx = len(self.written)
        stem = f"{self.split}-{idx:05d}"
        table = self._table(batches)
        parquet = self.directory / f"{stem}.parquet"
        with atomic_path(parquet) as tmp:
            pq.write_table(table, tmp, row_group_size=16_384, compression="zstd", compression_level=1)
        tokens, index = self._sidecars(batches)
        tokens_path, index_path = sidecar_paths(parquet)
        tokens_path.parent.mkdir(exist_ok=True)
        for path, array in ((tokens_path, tokens), (index_path, index)):
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, array, allow_pickle=False)
        lengths = index[:, 2]
        tiers = table.column("tier").to_numpy()
        shard = ShardFile(
            split=self.split, idx=idx, parquet=parquet, tokens=tokens_path, index=index_path,
            rows=table.num_rows, tokens_total=int(lengths.sum()),
            min_len=int(lengths.min()), max_len=int(lengths.max()),
        )
        for tier in np.unique(tiers):
            mask = tiers == tier
            shard.tier_counts[int(tier)] = (int(mask.sum()), int(lengths[mask].sum()))
        for path in (parquet, tokens_path, index_path):  # keyed by the path inside the version directory
            name = str(path.relative_to(self.directory))
            shard.sha256[name] = sha256_file(path)
            shard.bytes[name] = path.stat().st_size
        self.written.append(shard)

    def _table(self, batches: list[RowBatch]) -> pa.Table:
        n = sum(len(b) for b in batches)
        cat = lambda name: np.concatenate([getattr(b, name) for b in batches])  # noqa: E731
        flat = lambda name: [x for b in batches for x in getattr(b, name)]  # noqa: E731
        prompt_lens, target_lens = cat("prompt_lens"), cat("target_lens")
        columns = {
            "id": pa.array(flat("ids"), pa.string()),
            "source": pa.array([self.source] * n, pa.string()),
            "split": pa.array([self.split] * n, pa.string()),
            "tier": pa.array(cat("tiers").astype(np.int8), pa.int8()),
            "prompt_ids": pa.ListArray.from_arrays(_offsets(prompt_lens).astype(np.int32), cat("prompt_tokens").astype(np.int32)),
            "target_ids": pa.ListArray.from_arrays(_offsets(target_lens).astype(np.int32), cat("target_tokens").astype(np.int32)),
            "n_tokens": pa.array((prompt_lens + target_lens).astype(np.int32), pa.int32()),
            "prompt": pa.array(flat("prompts"), pa.string()),
            "target": pa.array(flat("targets"), pa.string()),
            "features": pa.array(flat("features"), pa.string()),
            "meta": pa.array(flat("metas"), pa.string()),
        }
        if self.with_image:
            columns["image"] = pa.array(flat("images"), pa.binary())
            columns["image_width"] = pa.array(flat("image_widths"), pa.int32())
            columns["image_height"] = pa.array(flat("image_heights"), pa.int32())
        return pa.Table.from_pydict(columns, schema=self.schema)

    def _sidecars(self, batches: list[RowBatch]) -> tuple[np.ndarray, np.ndarray]:
        pieces: list[np.ndarray] = []
        prompt_lens = np.concatenate([b.prompt_lens for b in batches]).astype(np.int64)
        n_tokens = np.concatenate([b.n_tokens for b in batches]).astype(np.int64)
        for b in batches:
            p_off, t_off = _offsets(b.prompt_lens), _offsets(b.target_lens)
            # interleave prompt and target of each row: build per-row slices via a gather index
            order = np.empty(int(b.n_tokens.sum()), dtype=np.int64)
            both = np.concatenate([b.prompt_tokens, b.target_tokens])
            row_start = _offsets(b.n_tokens)
            n_prompt_total = len(b.prompt_tokens)
            # positions of prompt tokens in the output and their source indices
            rows_p = np.repeat(np.arange(len(b)), b.prompt_lens)
            within_p = np.arange(len(b.prompt_tokens)) - p_off[rows_p]
            order[row_start[rows_p] + within_p] = np.arange(len(b.prompt_tokens))
            rows_t = np.repeat(np.arange(len(b)), b.target_lens)
            within_t = np.arange(len(b.target_tokens)) - t_off[rows_t]
            order[row_start[rows_t] + b.prompt_lens[rows_t] + within_t] = n_prompt_total + np.arange(len(b.target_tokens))
            pieces.append(both[order])
        tokens = np.concatenate(pieces).astype(self.token_dtype) if pieces else np.zeros(0, self.token_dtype)
        index = np.stack([_offsets(n_tokens)[:-1], prompt_lens, n_tokens], axis=1).astype(np.int64)
        return tokens, index


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
