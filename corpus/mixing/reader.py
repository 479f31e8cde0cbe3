"""The trainer's only way to data: a plan, read in order from memory-mapped sidecars.

    plan = open_plan(root, "manifests/demo.toml")      # or a plan id
    reader = PlanReader(plan, split="train", start=0, rank=0, world_size=1)
    for sample in reader: ...                          # Sample(position, id, source, tier, tokens, prompt_len)
    for batch in reader.iter_batches(8, 512): ...      # padded int32 [8, 512] arrays, no per-sample objects

Rank r of w reads positions ``start + r, start + r + w, ...``. The plan file is decoded one row
group at a time and shards are opened lazily and kept in a small LRU cache (token and index
sidecars memory-mapped; a shard's Parquet is never read except its ``id`` column, and only when
a :class:`Sample` needs it), so memory does not grow with the plan's length.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from corpus.errors import UserError

if TYPE_CHECKING:
    from corpus.mixing.manifest import Manifest

SPLITS = ("train", "val")
SAMPLE_BLOCK = 128  # rows prepared at a time for Sample iteration (take(n) reads ~n rows)
BATCH_BLOCK = 8192  # rows prepared at a time for iter_batches


@dataclass(frozen=True, slots=True)
class Sample:
    """One plan position: the row's tokens (prompt + target, at most the plan's ``max_seq_len``: a
    row the plan cuts is cut the same way here) and where the prompt ends."""

    position: int
    id: str
    source: str
    tier: int
    tokens: np.ndarray
    prompt_len: int


@dataclass
class Batch:
    """``batch_size`` consecutive samples of one reader, right-padded into one array."""

    positions: np.ndarray  # int64 [b]
    tokens: np.ndarray  # int32 [b, seq_len], pad_id after each row's length
    lengths: np.ndarray  # int32 [b], after truncation to seq_len
    prompt_lens: np.ndarray  # int32 [b], clipped to lengths
    components: np.ndarray  # int16 [b], index into plan.sources
    tiers: np.ndarray  # int8 [b]
    ids: list[str] | None = None


class _Shard:
    """One open shard: memory-mapped sidecars, and its ids once someone asks for them."""

    __slots__ = ("parquet", "tokens", "index", "_ids", "_check")

    def __init__(self, parquet: Path, check=None):
        from corpus.shards import open_sidecars

        if check is not None:  # corpus.mixing.readcheck: hashed against the catalog on first open
            check(parquet)
        self._check = check
        self.parquet = parquet
        tokens, index = open_sidecars(parquet)
        # plain ndarray views of the maps: slicing an np.memmap runs Python-level hooks per slice
        self.tokens, self.index = tokens.view(np.ndarray), index.view(np.ndarray)
        self._ids = None

    def ids(self):
        if self._ids is None:
            import pyarrow.parquet as pq

            if self._check is not None:
                self._check(self.parquet, ("parquet",))
            self._ids = pq.ParquetFile(self.parquet).read(columns=["id"]).column("id").combine_chunks()
        return self._ids


@dataclass
class _Chunk:
    """Decoded plan rows ``[start, start + len)`` of one split."""

    start: int
    component: np.ndarray
    shard: np.ndarray
    row: np.ndarray
    tier: np.ndarray


class PlanPositions:
    """The positions of one split: ``len()`` and slicing without loading the whole plan."""

    def __init__(self, plan: "Plan", split: str):
        import pyarrow.parquet as pq

        self.plan = plan
        self.split = split
        self.path = plan.dir / f"plan-{split}.parquet"
        self.file = pq.ParquetFile(self.path)
        sizes = [self.file.metadata.row_group(g).num_rows for g in range(self.file.num_row_groups)]
        self.offsets = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self._cache: OrderedDict[int, _Chunk] = OrderedDict()

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def row_group_of(self, position: int) -> int:
        return int(np.searchsorted(self.offsets, position, side="right") - 1)

    def chunk(self, group: int) -> _Chunk:
        """Row group ``group``, decoded (the last few are cached)."""
        if group in self._cache:
            self._cache.move_to_end(group)
            return self._cache[group]
        table = self.file.read_row_group(group, columns=["source", "shard", "row", "tier"])
        source = table.column("source").combine_chunks()
        lookup = np.array([self.plan.component_index[name] for name in source.dictionary.to_pylist()], np.int16)
        chunk = _Chunk(
            start=int(self.offsets[group]),
            component=lookup[source.indices.to_numpy()] if len(lookup) else np.zeros(0, np.int16),
            shard=table.column("shard").to_numpy(),
            row=table.column("row").to_numpy(),
            tier=table.column("tier").to_numpy(),
        )
        self._cache[group] = chunk
        if len(self._cache) > 4:
            self._cache.popitem(last=False)
        return chunk

    def __getitem__(self, key: int | slice) -> dict[str, Any]:
        """Plan rows as a dict of columns (``source`` names, ``shard``, ``row``, ``tier``...)."""
        if isinstance(key, int):
            if not -len(self) <= key < len(self):
                raise IndexError(key)
            key = key % len(self)
            out = self[key:key + 1]
            return {k: v[0] for k, v in out.items()}
        start, stop, step = key.indices(len(self))
        parts: dict[str, list] = {"position": [], "component": [], "shard": [], "row": [], "tier": []}
        g = self.row_group_of(start) if start < stop else 0
        while start < stop and g < len(self.offsets) - 1:
            c = self.chunk(g)
            lo, hi = start - c.start, min(stop, int(self.offsets[g + 1])) - c.start
            sel = slice(lo, hi)
            parts["position"].append(np.arange(c.start + lo, c.start + hi, dtype=np.int64))
            for name in ("component", "shard", "row", "tier"):
                parts[name].append(getattr(c, name)[sel])
            start = c.start + hi
            g += 1
        cols = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in parts.items()}
        if step != 1:
            cols = {k: v[::step] for k, v in cols.items()}
        cols["source"] = np.array([self.plan.sources[i]["source"] for i in cols["component"]], dtype=object)
        return cols


class Plan:
    """A registered, verified plan: its facts, its positions, and the shard cache readers share."""

    def __init__(self, root: Path, row: dict[str, Any], components: list[dict[str, Any]],
                 shards: dict[tuple[str, str], list[dict]], manifest_sha: str | None = None,
                 max_open_shards: int = 16, check_shard=None, fetch=None):
        self.root = Path(root)
        self.id: str = row["id"]
        self.name: str = row["name"]
        self.dir = self.root / row["dir"]
        self.tokenizer_sha: str = row["tokenizer_sha"]
        self.max_seq_len: int = int(row["max_seq_len"])
        self.manifest_sha: str = manifest_sha or row["manifest_sha256"]
        self.manifest_path: str = row["manifest_path"]
        self.seed: int = int(row["seed"])
        self.window: int = int(row["window_size"])
        self.sources = components  # [{source, version, weight, ...}] in component order
        self.component_index = {c["source"]: i for i, c in enumerate(components)}
        self._shard_paths = {(c_idx, split): {s["idx"]: self.root / s["path"] for s in shards[(c["version"], split)]}
                             for c_idx, c in enumerate(components) for split in SPLITS}
        self._positions: dict[str, PlanPositions] = {}
        self._open: OrderedDict[tuple[str, int, int], _Shard] = OrderedDict()
        self.max_open_shards = max_open_shards
        self.check_shard = check_shard
        self.fetch = fetch  # corpus.storage.fetch.PlanFetcher on an s3:// root, else None

    def __repr__(self) -> str:
        return f"Plan({self.id}, {self.name}, sources={[c['source'] for c in self.sources]})"

    def positions(self, split: str = "train") -> PlanPositions:
        if split not in SPLITS:
            raise UserError(f"split must be one of {SPLITS}, got {split!r}")
        if split not in self._positions:
            self._positions[split] = PlanPositions(self, split)
        return self._positions[split]

    def reader(self, split: str = "train", start: int = 0, rank: int = 0, world_size: int = 1) -> "PlanReader":
        return PlanReader(self, split, start, rank, world_size)

    @cached_property
    def tokenizer(self):
        """The plan's TokenizerInfo (vocab size, pad/bos/eos ids, the tokenizers object)."""
        from corpus.tokenizer import tokenizer_for_sha

        return tokenizer_for_sha(self.root, self.tokenizer_sha)

    def shard(self, split: str, component: int, idx: int) -> _Shard:
        key = (split, component, idx)
        handle = self._open.get(key)
        if handle is not None:
            self._open.move_to_end(key)
            return handle
        path = self._shard_paths[(component, split)][idx]
        if self.fetch is not None:  # an s3:// root: through the node's cache, the next shards fetched ahead
            self.fetch.ensure_shard(path)
            self._fetch_ahead(split, path)
        handle = _Shard(path, self.check_shard)
        self._open[key] = handle
        if len(self._open) > self.max_open_shards:
            self._open.popitem(last=False)
        return handle

    def _fetch_ahead(self, split: str, path: Path) -> None:
        if not self.fetch.has_order(split):  # the split's shards in the order its positions first use them
            import pyarrow.parquet as pq

            table = pq.read_table(self.dir / f"plan-{split}.parquet", columns=["source", "shard"])
            source = table.column("source").combine_chunks()
            lookup = np.array([self.component_index[n] for n in source.dictionary.to_pylist()], np.int64)
            keys = lookup[source.indices.to_numpy()] << 32 | table.column("shard").to_numpy().astype(np.int64)
            unique, first = np.unique(keys, return_index=True)
            order = [int(k) for k in unique[np.argsort(first)]]
            self.fetch.set_order(split, [self._shard_paths[(k >> 32, split)][k & 0xFFFFFFFF] for k in order])
        self.fetch.opened(split, path)


class PlanReader:
    """Samples of one split in plan order for one rank; remembers where it is (``position``)."""

    def __init__(self, plan: Plan, split: str = "train", start: int = 0, rank: int = 0, world_size: int = 1):
        if world_size < 1 or not 0 <= rank < world_size:
            raise UserError(f"need 0 <= rank < world_size, got rank {rank}, world_size {world_size}")
        self.plan = plan
        self.split = split
        self.positions = plan.positions(split)
        if not 0 <= start <= len(self.positions):
            raise UserError(f"start {start} outside the {split} plan (0..{len(self.positions)})")
        self.rank = rank
        self.world_size = world_size
        self.position = start + rank  # the next position this reader yields
        self._samples: Iterator[Sample] | None = None

    def __len__(self) -> int:
        """Samples left for this rank."""
        return max(0, -(-(len(self.positions) - self.position) // self.world_size))

    # -- the plan rows this rank reads, a row group at a time -------------------------------
    def _selections(self, block: int) -> Iterator[tuple[_Chunk, np.ndarray]]:
        """This rank's next plan rows, at most ``block`` at a time (so ``take(n)`` costs ~n), as
        (decoded row group, row offsets in it). The consumer advances ``self.position``."""
        n = len(self.positions)
        while self.position < n:
            g = self.positions.row_group_of(self.position)
            chunk = self.positions.chunk(g)
            end = int(self.positions.offsets[g + 1])
            stop = min(end, self.position + block * self.world_size)
            yield chunk, np.arange(self.position - chunk.start, stop - chunk.start, self.world_size)

    def _gather(self, chunk: _Chunk, local: np.ndarray):
        """Shard handles and (start, prompt_len, n_tokens) index rows for ``local`` plan rows."""
        comp, shard, row = chunk.component[local], chunk.shard[local], chunk.row[local]
        keys = comp.astype(np.int64) << 32 | shard.astype(np.int64)
        uniq, inverse = np.unique(keys, return_inverse=True)
        handles = [self.plan.shard(self.split, int(k >> 32), int(k & 0xFFFFFFFF)) for k in uniq]
        info = np.empty((len(local), 3), dtype=np.int64)
        for u, handle in enumerate(handles):
            mask = inverse == u
            info[mask] = handle.index[row[mask]]
        return handles, inverse, info, comp, row

    def __iter__(self) -> Iterator[Sample]:
        return self

    def __next__(self) -> Sample:
        if self._samples is None:
            self._samples = self._generate()
        return next(self._samples)

    def _generate(self) -> Iterator[Sample]:
        names = [c["source"] for c in self.plan.sources]
        limit = self.plan.max_seq_len  # a row the plan cut (overlong policy) is cut here the same way
        for chunk, local in self._selections(SAMPLE_BLOCK):
            rows = _Rows.of(self, chunk, local, limit, with_ids=False)
            step = self.world_size
            for j, (position, comp, tier, array, start, count, prompt_len) in enumerate(zip(
                    rows.positions.tolist(), rows.components.tolist(), rows.tiers.tolist(), rows.arrays,
                    rows.starts, rows.counts, rows.prompt_lens.tolist())):
                self.position = position + step
                yield Sample(position, rows.id_of(j), names[comp], tier, array[start:start + count].astype(np.int32),
                             prompt_len)

    def take(self, n: int) -> list[Sample]:
        """The next ``n`` samples (fewer at the end of the plan)."""
        return list(itertools.islice(self, n))

    def iter_batches(self, batch_size: int, seq_len: int | None = None, pad_id: int | None = None,
                     with_ids: bool = False, drop_last: bool = False) -> Iterator[Batch]:
        """Padded batches straight from the sidecars: no Sample objects, one copy per row.

        Everything but the token copies is computed once per plan row group; a batch's small
        columns are then views into those arrays.
        """
        if self._samples is not None:
            raise UserError("iter_batches() after iterating samples: open a new PlanReader at reader.position")
        seq_len = seq_len or self.plan.max_seq_len
        limit = min(seq_len, self.plan.max_seq_len)  # never more of a row than the plan delivers
        pad = self.plan.tokenizer.pad_id if pad_id is None else pad_id
        carry: list[tuple[_Rows, int, int]] = []  # pieces of a batch that spans two row groups
        carried = 0
        for chunk, local in self._selections(BATCH_BLOCK):
            rows = _Rows.of(self, chunk, local, limit, with_ids)
            size = len(rows)
            i = 0
            if carried:
                take = min(batch_size - carried, size)
                carry.append((rows, 0, take))
                carried += take
                i = take
                if carried == batch_size:
                    self.position = int(rows.positions[take - 1]) + self.world_size
                    yield _Rows.batch(carry, seq_len, pad)
                    carry, carried = [], 0
            positions = rows.positions.tolist()
            while i + batch_size <= size:
                self.position = positions[i + batch_size - 1] + self.world_size
                yield _Rows.batch([(rows, i, i + batch_size)], seq_len, pad)
                i += batch_size
            if i < size:
                carry.append((rows, i, size))
                carried += size - i
                self.position = positions[-1] + self.world_size
        if carry and not drop_last:
            yield _Rows.batch(carry, seq_len, pad)


class _Rows:
    """The selected rows of one plan row group, ready to be cut into batches."""

    __slots__ = ("positions", "components", "tiers", "lengths", "prompt_lens", "shards", "rows", "arrays", "starts",
                 "counts", "ids")

    def __len__(self) -> int:
        return len(self.positions)

    @classmethod
    def of(cls, reader: PlanReader, chunk: _Chunk, local: np.ndarray, seq_len: int, with_ids: bool) -> "_Rows":
        handles, inverse, info, comp, row = reader._gather(chunk, local)
        self = cls()
        self.positions = chunk.start + local
        self.components = comp
        self.tiers = chunk.tier[local]
        n = np.minimum(info[:, 2], seq_len)
        self.lengths = n.astype(np.int32)
        self.prompt_lens = np.minimum(info[:, 1], n).astype(np.int32)
        self.shards = [handles[h] for h in inverse.tolist()]
        self.rows = row.tolist()
        self.arrays = [h.tokens for h in self.shards]
        self.starts = info[:, 0].tolist()
        self.counts = n.tolist()
        self.ids = [self.id_of(j) for j in range(len(self.rows))] if with_ids else None
        return self

    def id_of(self, j: int) -> str:
        return self.shards[j].ids()[self.rows[j]].as_py()

    @staticmethod
    def batch(pieces: list[tuple["_Rows", int, int]], seq_len: int, pad: int) -> Batch:
        b = pieces[0][2] - pieces[0][1] if len(pieces) == 1 else sum(hi - lo for _, lo, hi in pieces)
        tokens = np.full((b, seq_len), pad, dtype=np.int32)
        k = 0
        for rows, lo, hi in pieces:
            arrays, starts, counts = rows.arrays, rows.starts, rows.counts
            for j in range(lo, hi):
                start, count = starts[j], counts[j]
                tokens[k, :count] = arrays[j][start:start + count]
                k += 1
        if len(pieces) == 1:
            rows, lo, hi = pieces[0]
            cols = [rows.positions[lo:hi], rows.lengths[lo:hi], rows.prompt_lens[lo:hi], rows.components[lo:hi],
                    rows.tiers[lo:hi]]
            ids = rows.ids[lo:hi] if rows.ids is not None else None
        else:
            cols = [np.concatenate([getattr(r, name)[lo:hi] for r, lo, hi in pieces])
                    for name in ("positions", "lengths", "prompt_lens", "components", "tiers")]
            ids = [i for r, lo, hi in pieces for i in r.ids[lo:hi]] if pieces[0][0].ids is not None else None
        positions, lengths, prompt_lens, components, tiers = cols
        return Batch(positions, tokens, lengths, prompt_lens, components, tiers, ids)


# -- opening -----------------------------------------------------------------------------------

def open_plan(root: str | Path | None, plan: str | Path | Manifest, verify: str = "quick", build_missing: bool = True) -> Plan:
    """A plan by id (or unique id prefix), by manifest path or by a loaded (possibly overridden)
    :class:`Manifest` (planned, and built, when missing).

    Refuses plans whose files are missing or differ from their registered sha256 (corpus.verify's
    check), and plans over versions that are not (or no longer) published. ``verify``: ``"quick"`` hashes the plan files
    and checks every shard file's size; ``"full"`` hashes the shard files too; ``"none"`` skips.
    """
    import duckdb

    from corpus.catalog import Catalog
    from corpus.paths import data_root

    from corpus.mixing.manifest import Manifest  # noqa: F811 (the runtime class)

    root = data_root(root)
    manifest_sha = None
    text = str(plan)
    if isinstance(plan, Manifest) or text.endswith(".toml") or Path(text).is_file():
        from corpus.mixing.plan import make_plan

        result = make_plan(plan if isinstance(plan, Manifest) else text, root, build_missing=build_missing, log=_quiet)
        plan_id, manifest_sha = result.id, result.resolved.manifest.sha256
        used = {c.index: {"chosen": c.chosen, "input_fingerprint": c.fingerprint} for c in result.resolved.components}
    else:
        plan_id, used = text, {}
    catalog = Catalog(root)
    if not catalog.path.exists():
        raise UserError(f"unknown plan {plan_id!r}: no catalog at {catalog.path}")
    with catalog.connect(read_only=True) as con:  # one short read-only connection: many workers may open at once
        def rows_of(sql: str, params: list) -> list[dict]:
            cur = con.execute(sql, params)
            cols = [d[0] for d in cur.description]
            return [dict(zip(cols, r)) for r in cur.fetchall()]

        try:
            rows = rows_of("SELECT * FROM mixes WHERE id = ? OR starts_with(id, ?) ORDER BY id", [plan_id, plan_id])
        except duckdb.CatalogException:
            rows = []  # a catalog from before the mixer's migration: no plans yet
        exact = [r for r in rows if r["id"] == plan_id]
        rows = exact or rows
        if not rows:
            raise UserError(f"unknown plan {plan_id!r} (see python -m corpus.sql \"SELECT id, name FROM mixes\")")
        if len(rows) > 1:
            raise UserError(f"plan prefix {plan_id!r} is ambiguous: {', '.join(r['id'] for r in rows[:5])}")
        row = rows[0]
        components = rows_of("SELECT * FROM mix_components WHERE mix = ? ORDER BY idx", [row["id"]])
        versions = sorted({c["version"] for c in components})
        marks = ", ".join("?" * len(versions))
        status = {r["id"]: r["status"] for r in rows_of(f"SELECT id, status FROM versions WHERE id IN ({marks})", versions)}
        for c in components:
            state = status.get(c["version"], "missing from the catalog")
            if state != "published":
                raise UserError(f"plan {row['id']}: version {c['version']} of {c['source']} is {state}, not published")
        all_shards = rows_of(f"SELECT * FROM shards WHERE version IN ({marks}) ORDER BY version, split, idx", versions)
        shards = {(v, split): [s for s in all_shards if s["version"] == v and s["split"] == split]
                  for v in versions for split in SPLITS}
        plan_files = rows_of("SELECT * FROM files WHERE version = ? AND role = 'plan'", [row["id"]])
        shard_files = rows_of(f"SELECT * FROM files WHERE role IN ('parquet', 'tokens', 'index') "
                              f"AND version IN ({marks})", versions)
        from corpus.mixing.readcheck import fast_digests

        digests = fast_digests(con, versions)
    from corpus.storage.fetch import plan_fetcher

    fetch = plan_fetcher(root, shard_files)  # None for a local root
    if verify != "none":  # on an s3:// root, shards not fetched yet are checked (sha256) when they are
        local = [f for f in shard_files if fetch is None or (root / f["path"]).exists()]
        _verify(root, row["id"], plan_files, local, all_shards, full=verify == "full")
    from corpus.mixing.readcheck import shard_checker

    for i, how in used.items():  # how this resolution chose each version (the catalog keeps the first plan's)
        components[i].update(how)
    return Plan(root, row, components, shards, manifest_sha, check_shard=shard_checker(root, shard_files, components, digests),
                fetch=fetch)


def _quiet(message: str) -> None:
    import sys

    print(message, file=sys.stderr)


def _verify(root: Path, plan_id: str, plan_files: list[dict], shard_files: list[dict], shards: list[dict],
            full: bool) -> None:
    """corpus.verify's check over the plan's files (hashed) and its shards' files (sized, or hashed)."""
    from corpus.shards import shard_key
    from corpus.verify import problem

    if not plan_files:
        raise UserError(f"plan {plan_id} has no registered files (re-run python -m corpus.mix on its manifest)")
    used = {shard_key(s["path"]) for s in shards}
    checks = [(f, True) for f in plan_files] + [(f, full) for f in shard_files if shard_key(f["path"]) in used]
    for record, hash_it in checks:
        why = problem(root, record, hash_it)
        if why:
            hint = ("re-run python -m corpus.mix on its manifest to plan it again" if record["role"] == "plan" else
                    "rebuild its version with python -m corpus.build ... --rebuild")
            raise UserError(f"plan {plan_id} refused: {why}; {hint} (python -m corpus.verify lists every damaged file)")
