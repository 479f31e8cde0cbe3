"""Near-duplicates: MinHash signatures, banded LSH, verified Jaccard, union-find clusters.

    per build batch (worker process)      after the last batch (driver)
    rows ─► shingles ─► signatures ──►  band keys ─► per band: candidate pairs ─► true Jaccard
            (corpus.quality.minhash)     (pure, one band per worker task)          │ ≥ threshold
                                                                                    ▼
                    near_duplicates (catalog) ◄── clusters (union-find, kept = first row)

The signature step runs where the build's per-row work runs (``--workers`` processes). The band
step is a pure function of (band index, that band's signature columns), mapped over the bands
by the local process pool when ``--workers`` > 1; the driver merges the pairs, verifies each
by the true Jaccard of the two rows' shingle sets (read back from the written shards) and
clusters the verified pairs with union-find. In each cluster the first row (by split, shard,
position: training rows before validation rows) is kept; every other row is recorded with the
row it matched, its cluster (the kept row), and the estimated and verified Jaccard.

Policies (``--near-dedup``): ``flag`` (default) records only; ``drop`` also removes the
non-kept rows from the shards (quarantined with the reason and the kept row's id); ``off``
computes nothing. Only ``drop`` changes what a version holds, so only its settings (threshold,
permutations, bands, shingles, library versions, this code) enter the version id.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpus.errors import UserError
from corpus.quality import minhash

POLICIES = ("flag", "drop", "off")
DEFAULT_POLICY = "flag"
DEFAULT_THRESHOLD = 0.8
DEFAULT_PERMUTATIONS = 128
DEFAULT_BANDS = 16
EMPTY = np.iinfo(np.uint32).max
ESTIMATE_MARGIN = 0.15  # candidates estimated below threshold - this are rejected unread


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Build flags (``corpus.build``)."""
    g = parser.add_argument_group("near-duplicates (docs/quality.md)")
    g.add_argument("--near-dedup", choices=POLICIES, default=DEFAULT_POLICY,
                   help="rows whose shingles overlap another row's by the threshold: flag (default: record in "
                        "the catalog), drop (keep the first of each cluster, quarantine the rest) or off")
    g.add_argument("--near-dedup-threshold", type=float, default=DEFAULT_THRESHOLD, metavar="J",
                   help=f"true Jaccard of two rows' shingles that makes them near-duplicates (default {DEFAULT_THRESHOLD})")
    g.add_argument("--near-dedup-permutations", type=int, default=DEFAULT_PERMUTATIONS, metavar="N",
                   help=f"MinHash permutations per row (default {DEFAULT_PERMUTATIONS})")
    g.add_argument("--near-dedup-bands", type=int, default=DEFAULT_BANDS, metavar="B",
                   help=f"LSH bands; permutations / bands rows each (default {DEFAULT_BANDS})")
    g.add_argument("--near-dedup-shingle", choices=minhash.SHINGLES, default=minhash.DEFAULT_SHINGLE,
                   help="word n-grams (default) or character n-grams of the normalized text")
    g.add_argument("--near-dedup-ngram", type=int, default=None, metavar="N",
                   help="shingle length: words (default 5) or characters (default 7)")


@dataclass(frozen=True)
class NearDedupConfig:
    """The validated near-dedup options of one build."""

    policy: str = DEFAULT_POLICY
    threshold: float = DEFAULT_THRESHOLD
    num_perm: int = DEFAULT_PERMUTATIONS
    bands: int = DEFAULT_BANDS
    shingle: str = minhash.DEFAULT_SHINGLE
    ngram: int = minhash.DEFAULT_NGRAM[minhash.DEFAULT_SHINGLE]
    seed: int = 0

    def __post_init__(self):
        if self.policy not in POLICIES:
            raise UserError(f"--near-dedup must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if not 0 < self.threshold <= 1:
            raise UserError(f"--near-dedup-threshold must be in (0, 1], got {self.threshold}")
        if self.num_perm < 1 or self.bands < 1 or self.num_perm % self.bands:
            raise UserError(f"--near-dedup-permutations ({self.num_perm}) must be a positive multiple of "
                            f"--near-dedup-bands ({self.bands})")
        if self.shingle not in minhash.SHINGLES:
            raise UserError(f"--near-dedup-shingle must be one of {', '.join(minhash.SHINGLES)}, got {self.shingle!r}")
        if self.ngram < 1:
            raise UserError(f"--near-dedup-ngram must be at least 1, got {self.ngram}")

    @classmethod
    def from_args(cls, args) -> "NearDedupConfig":
        shingle = getattr(args, "near_dedup_shingle", minhash.DEFAULT_SHINGLE)
        return cls(policy=getattr(args, "near_dedup", DEFAULT_POLICY),
                   threshold=getattr(args, "near_dedup_threshold", DEFAULT_THRESHOLD),
                   num_perm=getattr(args, "near_dedup_permutations", DEFAULT_PERMUTATIONS),
                   bands=getattr(args, "near_dedup_bands", DEFAULT_BANDS), shingle=shingle,
                   ngram=getattr(args, "near_dedup_ngram", None) or minhash.DEFAULT_NGRAM.get(shingle, 5))

    @property
    def rows_per_band(self) -> int:
        return self.num_perm // self.bands

    @property
    def settings(self) -> dict:
        return {"policy": self.policy, "threshold": self.threshold, "permutations": self.num_perm,
                "bands": self.bands, "shingle": self.shingle, "ngram": self.ngram, "seed": self.seed}

    def version_config(self) -> dict | None:
        """What enters the version id: only ``drop`` changes the rows a version holds."""
        if self.policy != "drop":
            return None
        return {**self.settings, "library": minhash.library_id(), "code": _code_hash()}

    def signatures(self, texts: list[str]) -> np.ndarray:
        return minhash.signatures(texts, self.num_perm, self.seed, self.shingle, self.ngram)


def row_texts(prompts: list[str], targets: list[str]) -> list[str]:
    """The text a row is compared by: its prompt and target (as exact dedup hashes them)."""
    return [f"{p}\n{t}" if t else p for p, t in zip(prompts, targets)]


# -- the band and cluster steps: pure functions -----------------------------------------------

def band_keys(band: np.ndarray) -> np.ndarray:
    """One uint64 key per row of one band's signature columns ``(rows, r)``; rows without
    shingles (all ``EMPTY``) get distinct keys so they never collide."""
    with np.errstate(over="ignore"):
        key = np.full(len(band), np.uint64(0xCBF29CE484222325))
        for col in band.T.astype(np.uint64):
            key = minhash._mix(key * np.uint64(0x100000001B3) + col)
    empty = (band == EMPTY).all(axis=1)
    key[empty] = np.uint64(1) + np.flatnonzero(empty).astype(np.uint64) * np.uint64(2)  # odd, unique
    return key


def band_candidates(band_index: int, band: np.ndarray) -> np.ndarray:
    """Candidate pairs ``(i, j)``, ``i < j``, of rows whose keys agree in this band: each row of a
    bucket is paired with the bucket's first row (a star, not all pairs: a bucket of a thousand
    copies costs a thousand checks). ``band_index`` names the task; the result does not depend on it."""
    del band_index
    keys = band_keys(band)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    new = np.ones(len(order), dtype=bool)
    new[1:] = sorted_keys[1:] != sorted_keys[:-1]
    first = order[np.flatnonzero(new)[np.cumsum(new) - 1]]
    member = ~new
    return np.stack([first[member], order[member]], axis=1).astype(np.int64)


def candidate_pairs(signatures: np.ndarray, bands: int, pool=None) -> np.ndarray:
    """Distinct candidate pairs over all bands, each band a separate task: ``pool.starmap`` when
    a pool is given (the build's ``--workers`` processes), else one after another here."""
    r = signatures.shape[1] // bands
    tasks = [(b, np.ascontiguousarray(signatures[:, b * r:(b + 1) * r])) for b in range(bands)]
    mapper = pool.starmap if pool is not None and hasattr(pool, "starmap") else None
    results = mapper(band_candidates, tasks) if mapper else [band_candidates(b, cols) for b, cols in tasks]
    pairs = np.concatenate(results) if results else np.zeros((0, 2), np.int64)
    if not len(pairs):
        return pairs
    return np.unique(pairs, axis=0)


def estimated_jaccard(signatures: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    """The share of permutations on which the two rows of each pair agree."""
    if not len(pairs):
        return np.zeros(0)
    return (signatures[pairs[:, 0]] == signatures[pairs[:, 1]]).mean(axis=1)


def clusters(n: int, pairs: np.ndarray) -> np.ndarray:
    """Union-find over verified pairs: each row's cluster root, the smallest row index in it."""
    parent = np.arange(n, dtype=np.int64)

    def find(x: int) -> int:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in pairs.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.arange(n, dtype=np.int64)
    touched = np.unique(pairs) if len(pairs) else np.zeros(0, np.int64)
    roots[touched] = [find(int(i)) for i in touched]
    return roots


@dataclass
class Found:
    """The near-duplicates among ``n`` rows: for each non-kept row, its match and its cluster."""

    rows: np.ndarray          # indexes of non-kept rows
    matches: np.ndarray       # the earlier row each was verified against
    clusters: np.ndarray      # the kept row of its cluster
    estimated: np.ndarray
    verified: np.ndarray
    candidates: int = 0
    texts: dict = field(default_factory=dict)  # row index -> text, for the rows above and their matches


def find_near_duplicates(signatures: np.ndarray, texts_of, config: NearDedupConfig, pool=None) -> Found:
    """Candidates from the bands, verified by true Jaccard (``texts_of(indexes) -> texts``),
    clustered. Each non-kept row is reported once, with its best verified earlier match."""
    n = len(signatures)
    pairs = candidate_pairs(signatures, config.bands, pool)
    empty = np.zeros(0, np.int64)
    candidates = len(pairs)
    # a pair whose estimate is far below the threshold is not worth reading texts for: with 128
    # permutations the estimate's spread at J = 0.8 is 0.035, so ESTIMATE_MARGIN is over 4 of them
    pairs = pairs[estimated_jaccard(signatures, pairs) >= config.threshold - ESTIMATE_MARGIN]
    if not len(pairs):
        return Found(empty, empty, empty, np.zeros(0), np.zeros(0), candidates=candidates)
    needed = np.unique(pairs)
    texts = texts_of(needed)
    sets = dict(zip(needed.tolist(), minhash.shingle_arrays(texts, config.shingle, config.ngram)))
    verified = np.array([minhash.jaccard(sets[a], sets[b]) for a, b in pairs.tolist()])
    keep = verified >= config.threshold
    good, exact = pairs[keep], verified[keep]
    estimated = estimated_jaccard(signatures, good)
    root = clusters(n, good)
    # each later row's best verified earlier partner (ties: the earliest)
    order = np.lexsort((good[:, 0], -exact, good[:, 1]))
    later = good[order, 1]
    first = np.ones(len(order), dtype=bool)
    first[1:] = later[1:] != later[:-1]
    pick = order[first]
    rows, matches = good[pick, 1], good[pick, 0]
    not_kept = root[rows] != rows
    rows, matches = rows[not_kept], matches[not_kept]
    shown = set(rows.tolist()) | set(matches.tolist())
    return Found(rows, matches, root[rows], estimated[pick][not_kept], exact[pick][not_kept], candidates=candidates,
                 texts={i: t for i, t in zip(needed.tolist(), texts) if i in shown})


# -- what the build uses ----------------------------------------------------------------------

@dataclass
class RowRef:
    split: str
    shard: int
    position: int  # row number inside its shard
    row_id: str


class RowRefs:
    """Where each compared row is (split, shard, position in it) and its id, as arrays."""

    def __init__(self) -> None:
        self.splits: list[str] = []
        self.split_of: list[np.ndarray] = []
        self.shard: list[np.ndarray] = []
        self.position: list[np.ndarray] = []
        self.ids: list[str] = []

    def extend(self, split: str, ids: list[str], shard_rows: list[tuple[int, int]]) -> None:
        counts = np.array([rows for _, rows in shard_rows], dtype=np.int64)
        self.split_of.append(np.full(int(counts.sum()), len(self.splits)))
        self.splits.append(split)
        self.shard.append(np.repeat([idx for idx, _ in shard_rows], counts).astype(np.int64))
        self.position.append(np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts))
        self.ids.extend(ids)

    def close(self) -> None:
        for name in ("split_of", "shard", "position"):
            parts = getattr(self, name)
            setattr(self, name, np.concatenate(parts) if parts else np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> RowRef:
        return RowRef(self.splits[int(self.split_of[i])], int(self.shard[i]), int(self.position[i]), self.ids[i])


@dataclass
class NearDedup:
    """Collects the signatures of the rows a build writes, then finds and records near-duplicates."""

    config: NearDedupConfig
    parts: dict = field(default_factory=dict)      # split -> [signature arrays, in write order]
    ids: dict = field(default_factory=dict)        # split -> [row ids, in write order]
    found: Found | None = None
    refs: RowRefs = field(default_factory=RowRefs)
    seconds: float = 0.0
    signatures: np.ndarray | None = None  # every compared row's, in ``refs`` order
    across: list = field(default_factory=list)  # records against other sources' versions (scope across)
    across_note: str = ""

    def add(self, split: str, ids: list[str], signatures: np.ndarray) -> None:
        self.parts.setdefault(split, []).append(signatures)
        self.ids.setdefault(split, []).extend(ids)

    def run(self, shard_files, pool=None) -> Found:
        """Near-duplicates among every row written (``shard_files``: the writers' ShardFile records)."""
        import time

        t0 = time.perf_counter()
        self.refs = RowRefs()
        sigs = []
        for split in sorted(self.parts):  # "train" before "val": training rows are the ones kept
            sigs.extend(self.parts[split])
            counts = [(s.idx, s.rows) for s in sorted((s for s in shard_files if s.split == split),
                                                     key=lambda s: s.idx)]
            ids = self.ids[split]
            if sum(rows for _, rows in counts) != len(ids):
                raise RuntimeError(f"near-dedup: {len(ids)} signatures of {split} rows but "
                                   f"{sum(rows for _, rows in counts)} rows written")
            self.refs.extend(split, ids, counts)
        self.refs.close()
        signatures = np.concatenate(sigs) if sigs else np.zeros((0, self.config.num_perm), np.uint32)
        self.signatures = signatures
        by_path = {(s.split, s.idx): s.parquet for s in shard_files}
        self.found = find_near_duplicates(signatures, lambda idx: self._texts(idx, by_path), self.config, pool)
        self.seconds = time.perf_counter() - t0
        return self.found

    def _texts(self, indexes: np.ndarray, by_path) -> list[str]:
        """The texts of the given rows, read back from their shards (candidates are few)."""
        return read_texts([(by_path[(self.refs[i].split, self.refs[i].shard)], self.refs[i].position)
                           for i in indexes.tolist()])

    def kept(self, shard_files) -> tuple[np.ndarray, RowRefs]:
        """Signatures and locations of the rows the final shards hold (after a drop, the kept ones
        at their new positions)."""
        drop = self.dropped_ids()
        if not drop:
            return self.signatures, self.refs
        keep = np.array([i not in drop for i in self.refs.ids], dtype=bool)
        refs = RowRefs()
        for k, split in enumerate(self.refs.splits):
            mine = keep & (self.refs.split_of == k)
            counts = [(s.idx, s.rows) for s in sorted((s for s in shard_files if s.split == split),
                                                     key=lambda s: s.idx)]
            refs.extend(split, [self.refs.ids[i] for i in np.flatnonzero(mine).tolist()], counts)
        refs.close()
        return self.signatures[keep], refs

    @property
    def count(self) -> int:
        return 0 if self.found is None else len(self.found.rows)

    def dropped_ids(self) -> set[str]:
        if self.found is None or self.config.policy != "drop":
            return set()
        return {self.refs[i].row_id for i in self.found.rows.tolist()}

    def records(self) -> list[dict]:
        """One record per non-kept row (catalog ``near_duplicates``)."""
        f = self.found
        if f is None:
            return []
        action = "dropped" if self.config.policy == "drop" else "flagged"
        out = []
        for row, match, root, est, ver in zip(f.rows.tolist(), f.matches.tolist(), f.clusters.tolist(),
                                              f.estimated.tolist(), f.verified.tolist()):
            r, m, c = self.refs[row], self.refs[match], self.refs[root]
            out.append({"split": r.split, "shard": r.shard, "row_id": r.row_id, "duplicate_of": m.row_id,
                        "duplicate_of_split": m.split, "cluster": c.row_id, "estimated_jaccard": round(est, 6),
                        "jaccard": round(ver, 6), "action": action,
                        "text": _excerpt(f.texts.get(row)), "duplicate_of_text": _excerpt(f.texts.get(match))})
        return out

    def clusters_count(self) -> int:
        return 0 if self.found is None else len(set(self.found.clusters.tolist()))

    def summary(self) -> str:
        c = self.config
        what = "dropped" if c.policy == "drop" else "flagged"
        return (f"near-duplicates ({c.policy}, Jaccard ≥ {c.threshold} over {c.shingle} {c.ngram}-grams, "
                f"{c.num_perm} permutations in {c.bands} bands): {what} {self.count} rows in "
                f"{self.clusters_count()} clusters ({0 if self.found is None else self.found.candidates} "
                f"candidate pairs, {self.seconds:.1f} s)" + (f"; {self.across_note}" if self.across_note else ""))


def read_texts(locations: list[tuple[Path, int]]) -> list[str]:
    """Row texts by (shard file, row position), each file read once."""
    import pyarrow.parquet as pq

    wanted: dict = {}
    for k, (path, position) in enumerate(locations):
        wanted.setdefault(path, []).append((position, k))
    out: list = [None] * len(locations)
    for path, items in wanted.items():
        with pq.ParquetFile(path) as f:
            table = f.read(columns=["prompt", "target"])
        prompts, targets = table.column("prompt").to_pylist(), table.column("target").to_pylist()
        for (position, k), text in zip(items, row_texts([prompts[p] for p, _ in items],
                                                        [targets[p] for p, _ in items])):
            out[k] = text
    return out


SIGNATURES_DIR = ".near-dedup"  # beside .mmap in a version directory: hidden from Parquet readers


def signature_key(config: NearDedupConfig) -> str:
    """What makes two versions' signatures comparable: permutations, seed, shingles, libraries."""
    what = json.dumps([config.num_perm, config.seed, config.shingle, config.ngram, minhash.library_id()])
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def signatures_path(version_directory: Path, config: NearDedupConfig) -> Path:
    return Path(version_directory) / SIGNATURES_DIR / f"signatures-{signature_key(config)}.parquet"


def save_signatures(version_directory: Path, config: NearDedupConfig, signatures: np.ndarray,
                    refs: RowRefs) -> Path:
    """The version's row signatures for later builds' ``across`` comparison: Parquet (same rows,
    same bytes, like the shards), one fixed-size binary signature per row; temp, fsync, rename."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from corpus.atomic import atomic_path

    path = signatures_path(version_directory, config)
    path.parent.mkdir(exist_ok=True)
    n, width = signatures.shape
    packed = pa.FixedSizeBinaryArray.from_buffers(pa.binary(4 * width), n, [None, pa.py_buffer(
        np.ascontiguousarray(signatures, dtype="<u4").tobytes())])
    table = pa.table({"id": pa.array(refs.ids, pa.string()),
                      "split": pa.array([refs.splits[k] for k in refs.split_of.tolist()], pa.string()),
                      "shard": pa.array(refs.shard, pa.int32()), "position": pa.array(refs.position, pa.int64()),
                      "signature": packed})
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return path


def load_signatures(path: Path) -> tuple[np.ndarray, RowRefs]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(path) as f:
        table = f.read()
    column = table.column("signature").combine_chunks()
    width = column.type.byte_width // 4
    signatures = np.frombuffer(column.buffers()[1], dtype="<u4")[column.offset * width:(column.offset + len(column))
                                                                 * width].reshape(len(column), width)
    refs = RowRefs()
    splits = table.column("split").to_pylist()
    refs.splits = sorted(set(splits))
    index = {name: k for k, name in enumerate(refs.splits)}
    refs.split_of = np.array([index[x] for x in splits], dtype=np.int64)
    refs.shard = table.column("shard").to_numpy().astype(np.int64)
    refs.position = table.column("position").to_numpy().astype(np.int64)
    refs.ids = table.column("id").to_pylist()
    return signatures.astype(np.uint32), refs


EXCERPT_CHARS = 400  # of each row's text kept beside a near-duplicate: a dropped row is in no shard


def _excerpt(text: str | None) -> str | None:
    return None if text is None else text[:EXCERPT_CHARS]


def record(con, version_id: str, nd: "NearDedup | None") -> None:
    """Write the version's near-duplicates and the run's settings (``rows``: the rows compared,
    dropped ones included)."""
    con.execute("DELETE FROM near_duplicates WHERE version = ?", [version_id])
    con.execute("DELETE FROM near_dedup_runs WHERE version = ?", [version_id])
    if nd is None:
        return
    recs = nd.records()
    if recs or nd.across:
        con.executemany("INSERT INTO near_duplicates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        [[version_id, r["split"], r["shard"], r["row_id"], r.get("duplicate_of_version", version_id),
                          r["duplicate_of"], r["duplicate_of_split"], r["cluster"], r["estimated_jaccard"],
                          r["jaccard"], r.get("scope", "within"), r["action"], r["text"], r["duplicate_of_text"]]
                         for r in recs + nd.across])
    c = nd.config
    con.execute("INSERT INTO near_dedup_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [version_id, c.policy, c.threshold, c.num_perm, c.bands, c.shingle, c.ngram,
                 minhash.library_id(), len(nd.refs), len(recs), nd.clusters_count(), len(nd.across), nd.seconds])


def prepare(args, kind: str) -> tuple["NearDedup | None", str | None]:
    """The collector for this build, or None with the reason it does not run (a line for the summary)."""
    config = NearDedupConfig.from_args(args)
    if config.policy == "off":
        return None, None
    try:
        minhash.rensa()
    except minhash.MissingLibrary as exc:
        if config.policy == "drop":
            raise UserError(f"--near-dedup drop: {exc}") from None
        return None, f"near-dedup skipped: {exc}"
    return NearDedup(config), None


def _code_hash() -> str:
    """Hash of the code that decides which rows are near-duplicates (enters drop builds' ids)."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("near_dedup.py", "minhash.py", "text.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]


def rows_of_shard(shard, with_image: bool):
    """A written shard back as :class:`~corpus.shards.Rows` (table, batch from the sidecars, facts)."""
    import pyarrow.parquet as pq

    from corpus.quality.facts import table_facts
    from corpus.shards import RowBatch, Rows, open_sidecars

    with pq.ParquetFile(shard.parquet) as f:
        table = f.read()
    tokens, index = open_sidecars(shard.parquet)
    col = lambda name: table.column(name).to_pylist()  # noqa: E731
    batch = RowBatch(
        ids=col("id"), tiers=table.column("tier").to_numpy().astype(np.int64), tokens=np.array(tokens),
        prompt_lens=np.array(index[:, 1]), target_lens=np.array(index[:, 2] - index[:, 1]),
        prompts=col("prompt"), targets=col("target"), features=col("features"), metas=col("meta"),
        images=col("image") if with_image else None, image_widths=col("image_width") if with_image else None,
        image_heights=col("image_height") if with_image else None)
    return Rows(batch, table, table_facts(table, with_image))


def rewrite_without(shard_files: list, drop: set[str], make_writer, with_image: bool) -> list:
    """The shards of every split holding a dropped row, written again without those rows (same
    row order, shard boundaries by the same rule); other splits' files stay as they are.
    ``make_writer(split, directory)`` gives a ShardWriter; returns the new ShardFile list."""
    import os
    import shutil

    from corpus.shards import SIDECAR_DIR

    out = []
    for split in sorted({s.split for s in shard_files}):
        files = sorted((s for s in shard_files if s.split == split), key=lambda s: s.idx)
        parts = [(s, rows_of_shard(s, with_image)) for s in files]
        if not any(i in drop for _, rows in parts for i in rows.ids):
            out.extend(files)
            continue
        directory = files[0].parquet.parent
        fresh = directory / f".near-dedup-{split}-{os.getpid()}"
        fresh.mkdir()
        writer = make_writer(split, fresh)
        for _, rows in parts:
            keep = np.array([k for k, i in enumerate(rows.ids) if i not in drop], dtype=np.int64)
            writer.add(rows.take(keep))
        new = writer.close()
        for s in files:  # the old files go, the new ones take their names
            for path in (s.parquet, s.tokens, s.index):
                path.unlink()
        (directory / SIDECAR_DIR).mkdir(exist_ok=True)
        for s in new:
            for attr in ("parquet", "tokens", "index"):
                path = getattr(s, attr)
                target = directory / path.relative_to(fresh)
                os.replace(path, target)
                setattr(s, attr, target)
        shutil.rmtree(fresh)
        out.extend(new)
    return out
