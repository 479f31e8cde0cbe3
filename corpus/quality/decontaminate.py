"""Decontamination: training rows that contain most of an evaluation text.

Evaluation sets are the catalog's published versions of kind ``eval`` (GSM8K/MBPP/ScienceQA test
splits, HumanEval, any build with ``--role eval``). Each item's prompt and its target (less what
its source says is not the item: ScienceQA's shared lectures, ``Source.identity_texts``) are
indexed as texts of normalized word n-grams (default 13, ``--ngram``). N-grams found in
``BOILERPLATE_ITEMS`` or more items are a template (MBPP's "You are an expert Python programmer,
and here is your task: ..."), not a benchmark item, and are left out; texts shorter than ``n``
words have no n-gram (counted in :attr:`EvalIndex.short_texts`).

A training row hits an eval text when it contains at least ``--min-overlap`` (default 0.5) of
that text's indexed n-grams: a copied question or solution matches all of them, while a shared
stock phrase ("write a function to check whether the given ...") matches one or two of forty.

The check runs inside ``corpus.build``, on each tokenized batch *before* it reaches a shard
(shards are immutable once written). With policy ``drop`` (default) a hit row is removed; with
``flag`` it is kept. Either way the hit is recorded in the catalog table ``decontamination``
(version, split, shard, row_id, benchmark, eval_version, item, ngram, action) — for a dropped
row, ``shard`` is the shard it would have been written to. The eval versions and the rule's
parameters enter the version id, so a new eval set gives new training versions.
"""

from __future__ import annotations

import argparse
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from corpus.errors import UserError

POLICIES = ("drop", "flag", "off")
DEFAULT_NGRAM = 13
DEFAULT_MIN_OVERLAP = 0.5
# An n-gram found in this many eval items or more is a template ("You are an expert Python
# programmer, and here is your task: ..."), not a benchmark item: it is left out of the index.
BOILERPLATE_ITEMS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Build flags (``corpus.build``): decontamination, and the suites' duplicate-rate bound."""
    g = parser.add_argument_group("data quality (docs/quality.md)")
    g.add_argument("--max-dup-rate", type=float, default=None, metavar="R",
                   help="highest share of rows repeating another row's normalized text that the suites accept "
                        "(default: 0.01 for qa/code/text, 0.05 for image; synthetic: 0.05 as a warning only)")
    g.add_argument("--decontaminate", choices=POLICIES, default="drop",
                   help="rows containing most of an eval item: drop (default), flag (keep, list) or off")
    g.add_argument("--ngram", type=int, default=DEFAULT_NGRAM, help=f"word n-gram length (default {DEFAULT_NGRAM})")
    g.add_argument("--min-overlap", type=float, default=DEFAULT_MIN_OVERLAP, metavar="F",
                   help="share of an eval text's n-grams a row must contain to be a hit "
                        f"(default {DEFAULT_MIN_OVERLAP})")
    g.add_argument("--decontaminate-against", nargs="+", metavar="EVAL",
                   help="eval version ids or source names to index (default: every published eval version)")


@dataclass
class EvalIndex:
    """(n-gram hash, eval text) pairs sorted by hash, and what each text is."""

    n: int
    versions: list[tuple[str, str]]            # (eval version id, benchmark = its source)
    hashes: np.ndarray                         # uint64, sorted (a hash may belong to a few texts)
    text_of: np.ndarray                        # int64 per hash: index into ``texts``
    text_item: np.ndarray                      # int64 per text: its item (index into ``items``)
    grams: np.ndarray                          # int64 per text: its indexed n-grams
    items: list[tuple[str, str, str]]          # (benchmark, eval version, item id)
    short_texts: int = 0                       # eval texts with fewer than n words
    boilerplate: int = 0                       # n-grams left out: shared by >= BOILERPLATE_ITEMS items

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """For each query gram, every indexed text holding it: (query position, text) pairs."""
        if len(self.hashes) == 0 or len(grams) == 0:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        lo = np.searchsorted(self.hashes, grams, side="left")
        hi = np.searchsorted(self.hashes, grams, side="right")
        counts = hi - lo
        query = np.repeat(np.arange(len(grams)), counts)
        offsets = np.cumsum(counts) - counts
        slot = np.repeat(lo, counts) + (np.arange(counts.sum()) - np.repeat(offsets, counts))
        return query, self.text_of[slot]


def eval_versions(catalog, against: list[str] | None) -> list[dict]:
    """Published eval versions, optionally restricted to ids or source names in ``against``."""
    rows = catalog.query_dicts(
        "SELECT id, source FROM versions WHERE kind = 'eval' AND status = 'published' ORDER BY source, id")
    if not against:
        return rows
    picked = [r for r in rows if r["id"] in against or r["source"] in against]
    unknown = [a for a in against if not any(a in (r["id"], r["source"]) for r in rows)]
    if unknown:
        known = ", ".join(f"{r['source']}:{r['id']}" for r in rows) or "none"
        raise UserError(f"--decontaminate-against {', '.join(unknown)}: no published eval version "
                        f"(known: {known}; build one with --role eval or an eval split)")
    return picked


def build_index(root: Path, catalog, versions: list[dict], n: int) -> EvalIndex:
    """Index the texts that make each row of ``versions`` that item (its source's
    ``identity_texts``: prompt and target, less stock text such as ScienceQA lectures) as word n-grams."""
    import json

    import pyarrow.parquet as pq

    from corpus.sources import get_source
    from corpus.sources.base import Source

    items: list[tuple[str, str, str]] = []
    owners: list[int] = []
    texts: list[str] = []
    for v in versions:
        try:
            identity = get_source(v["source"]).identity_texts
        except UserError:  # a source this code no longer knows: index prompt and target
            identity = Source.identity_texts
        for shard in catalog.shards(v["id"]):
            with pq.ParquetFile(root / shard["path"]) as file:  # not read_table: pyarrow.dataset imports pandas
                table = file.read(columns=["id", "prompt", "target", "meta"])
            for row_id, prompt, target, meta in zip(*(table.column(c).to_pylist()
                                                      for c in ("id", "prompt", "target", "meta"))):
                for text in identity(prompt or "", target or "", json.loads(meta or "{}")):
                    owners.append(len(items))
                    texts.append(text)
                items.append((v["source"], v["id"], row_id))
    return index_texts(n, [(v["id"], v["source"]) for v in versions], items, owners, texts)


def index_texts(n: int, versions: list[tuple[str, str]], items: list[tuple[str, str, str]], owners: list[int],
                texts: list[str]) -> EvalIndex:
    """The index of ``texts`` (``owners[i]`` = the item of ``texts[i]``), template n-grams left out."""
    from corpus.quality.text import ngram_hashes

    owners_arr = np.asarray(owners, dtype=np.int64)
    if not texts:  # nothing registered to check against: no need for the text kernels
        empty = np.zeros(0, dtype=np.int64)
        return EvalIndex(n, versions, np.zeros(0, dtype=np.uint64), empty, owners_arr, empty, items)
    rows, _, hashes, _ = ngram_hashes(texts, n)
    short = sum(1 for t in texts if t.strip()) - len(np.unique(rows))
    # distinct (hash, text) pairs, then how many distinct items each hash appears in
    order = np.lexsort((rows, hashes))
    hashes, rows = hashes[order], rows[order]
    distinct = np.ones(len(hashes), dtype=bool)
    distinct[1:] = (hashes[1:] != hashes[:-1]) | (rows[1:] != rows[:-1])
    hashes, rows = hashes[distinct], rows[distinct]
    item = owners_arr[rows] if len(rows) else np.zeros(0, np.int64)
    by_item = np.lexsort((item, hashes))
    new_item = np.ones(len(hashes), dtype=bool)
    new_item[1:] = (hashes[by_item][1:] != hashes[by_item][:-1]) | (item[by_item][1:] != item[by_item][:-1])
    unique_hashes, inverse = np.unique(hashes, return_inverse=True)
    items_per_hash = np.bincount(inverse[by_item][new_item], minlength=len(unique_hashes))
    keep = items_per_hash[inverse] < BOILERPLATE_ITEMS
    hashes, rows = hashes[keep], rows[keep]
    return EvalIndex(n, versions, hashes, rows, owners_arr, np.bincount(rows, minlength=len(texts)), items, short,
                     int((items_per_hash >= BOILERPLATE_ITEMS).sum()))


@dataclass
class Hit:
    split: str
    shard: str
    row_id: str
    benchmark: str
    eval_version: str
    item: str
    ngram: str
    action: str


@dataclass
class Decontaminator:
    """The build-side filter: :meth:`apply` to each batch before the shard writer sees it."""

    index: EvalIndex
    policy: str
    min_overlap: float = DEFAULT_MIN_OVERLAP
    shard_dir: str = ""                       # shard paths relative to the data root, set by build
    hits: list[Hit] = field(default_factory=list)

    @property
    def config(self) -> dict:
        """What enters the version id: the rule and exactly what it was checked against."""
        return {"policy": self.policy, "n": self.index.n, "against": sorted(v for v, _ in self.index.versions),
                "min_overlap": self.min_overlap, "boilerplate_items": BOILERPLATE_ITEMS, "code": _code_hash()}

    def apply(self, batch, split: str, shard_of):
        """``batch`` (a RowBatch) without its contaminated rows (policy drop) or unchanged (flag).

        ``shard_of`` is the shard index every row of the batch goes to (an int), or a function
        giving the indexes of all its rows (a batch may straddle two shards)."""
        if len(self.index) == 0 or len(batch) == 0:
            return batch
        found = find_hits(self.index, [f"{p}\n{t}" for p, t in zip(batch.prompts, batch.targets)], self.min_overlap)
        if not found:
            return batch
        action = "dropped" if self.policy == "drop" else "flagged"
        shards = shard_of(batch) if callable(shard_of) else np.full(len(batch), shard_of)
        for row, (benchmark, eval_version, item, ngram) in sorted(found.items()):
            name = f"{split}-{int(shards[row]):05d}.parquet"
            shard = f"{self.shard_dir}/{name}" if self.shard_dir else name
            self.hits.append(Hit(split, shard, batch.ids[row], benchmark, eval_version, item, ngram, action))
        if self.policy != "drop":
            return batch
        keep = np.setdiff1d(np.arange(len(batch)), np.fromiter(found, dtype=np.int64))
        return batch.take(keep)

    def record(self, catalog, version_id: str) -> None:
        """Write the hits to the catalog (replacing any from an interrupted earlier attempt)."""
        with catalog.connect() as con:
            con.execute("DELETE FROM decontamination WHERE version = ?", [version_id])
            if self.hits:
                con.executemany("INSERT INTO decontamination VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                                [[version_id, h.split, h.shard, h.row_id, h.benchmark, h.eval_version, h.item,
                                  h.ngram, h.action] for h in self.hits])

    def summary(self) -> str:
        against = ", ".join(f"{src}:{vid}" for vid, src in self.index.versions) or "no eval versions registered"
        if self.index.boilerplate:
            against += f"; {self.index.boilerplate} template n-grams ignored"
        if not self.hits:
            return f"decontamination ({self.policy}, {self.rule} vs {against}): no hits"
        by_bench: dict[str, int] = {}
        for h in self.hits:
            by_bench[h.benchmark] = by_bench.get(h.benchmark, 0) + 1
        what = "dropped" if self.policy == "drop" else "flagged"
        counts = ", ".join(f"{b}: {n}" for b, n in sorted(by_bench.items()))
        return f"decontamination ({self.policy}, {self.rule} vs {against}): {what} {len(self.hits)} rows ({counts})"

    @property
    def rule(self) -> str:
        return f"≥{self.min_overlap:.0%} of an eval text's {self.index.n}-grams"


def find_hits(index: EvalIndex, texts: list[str], min_overlap: float = DEFAULT_MIN_OVERLAP
              ) -> dict[int, tuple[str, str, str, str]]:
    """Row position → (benchmark, eval version, item, a shared n-gram) for rows that contain at least
    ``min_overlap`` of some eval text's indexed n-grams (the best-covered text is reported)."""
    from corpus.quality.text import ngram_hashes

    rows, starts, grams, flat = ngram_hashes(texts, index.n)
    query, text = index.lookup(grams)
    if len(query) == 0:
        return {}
    row, gram = rows[query], grams[query]
    pairs = np.unique(np.stack([row, text, gram.view(np.int64)], axis=1), axis=0)  # distinct grams per (row, text)
    keys, shared = np.unique(pairs[:, :2], axis=0, return_counts=True)
    coverage = shared / np.maximum(index.grams[keys[:, 1]], 1)
    out: dict[int, tuple[str, str, str, str]] = {}
    for k in np.argsort(-coverage, kind="stable"):
        if coverage[k] < min_overlap:
            break
        r, t = int(keys[k, 0]), int(keys[k, 1])
        if r in out:
            continue
        common = pairs[(pairs[:, 0] == r) & (pairs[:, 1] == t), 2]
        example = int(np.flatnonzero((rows == r) & np.isin(grams.view(np.int64), common))[0])  # the earliest
        ngram = " ".join(flat.slice(int(starts[example]), index.n).to_pylist())
        out[r] = (*index.items[int(index.text_item[t])], ngram)
    return out


def prepare(args, catalog, root: Path, kind: str) -> Decontaminator | None:
    """The filter for this build, or None (eval versions and ``--decontaminate off``)."""
    policy = getattr(args, "decontaminate", "drop")
    if kind == "eval" or policy == "off":
        return None
    if args.ngram < 1:
        raise UserError(f"--ngram must be at least 1, got {args.ngram}")
    if not 0 < args.min_overlap <= 1:
        raise UserError(f"--min-overlap must be in (0, 1], got {args.min_overlap}")
    versions = eval_versions(catalog, getattr(args, "decontaminate_against", None))
    return Decontaminator(build_index(root, catalog, versions, args.ngram), policy, args.min_overlap)


def _code_hash() -> str:
    """Hash of the code that decides a hit: a change there must change training version ids."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("decontaminate.py", "text.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]
