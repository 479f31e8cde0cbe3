"""Decontamination: training rows that share a word n-gram with an evaluation item.

Evaluation sets are the catalog's published versions of kind ``eval`` (GSM8K test built with
``--role eval``, MBPP/ScienceQA test splits, HumanEval, ...). Each item's prompt and target are
indexed separately as normalized word n-grams (default 13, ``--ngram``); texts shorter than
``n`` words are not indexable (counted, see :attr:`EvalIndex.short_texts`).

The check runs inside ``corpus.build``, on each tokenized batch *before* it reaches a shard
(shards are immutable once written). With policy ``drop`` (default) a hit row is removed; with
``flag`` it is kept. Either way the hit is recorded in the catalog table ``decontamination``
(version, split, shard, row_id, benchmark, eval_version, item, ngram, action) — for a dropped
row, ``shard`` is the shard it would have been written to. The eval versions, ``n`` and the
policy enter the version id, so a new eval set gives new training versions.
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Build flags (``corpus.build``): decontamination, and the suites' duplicate-rate bound."""
    g = parser.add_argument_group("data quality (docs/quality.md)")
    g.add_argument("--max-dup-rate", type=float, default=None, metavar="R",
                   help="highest share of rows repeating another row's normalized text that the suites accept "
                        "(default: 0.01 for qa/code/text, 0.05 for image/synthetic)")
    g.add_argument("--decontaminate", choices=POLICIES, default="drop",
                   help="rows sharing an n-gram with an eval item: drop (default), flag (keep, list) or off")
    g.add_argument("--ngram", type=int, default=DEFAULT_NGRAM, help=f"word n-gram length (default {DEFAULT_NGRAM})")
    g.add_argument("--decontaminate-against", nargs="+", metavar="EVAL",
                   help="eval version ids or source names to index (default: every published eval version)")


@dataclass
class EvalIndex:
    """Sorted n-gram hashes of evaluation texts and, for each, the item it came from."""

    n: int
    versions: list[tuple[str, str]]            # (eval version id, benchmark = its source)
    hashes: np.ndarray                         # uint64, sorted, unique
    item_of: np.ndarray                        # int64 index into ``items`` per hash
    items: list[tuple[str, str, str]]          # (benchmark, eval version, item id)
    short_texts: int = 0                       # eval texts with fewer than n words

    def __len__(self) -> int:
        return len(self.hashes)

    def lookup(self, grams: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mask of ``grams`` present in the index, and the matched item index (valid under mask)."""
        if len(self.hashes) == 0 or len(grams) == 0:
            return np.zeros(len(grams), dtype=bool), np.zeros(len(grams), dtype=np.int64)
        pos = np.minimum(np.searchsorted(self.hashes, grams), len(self.hashes) - 1)
        return self.hashes[pos] == grams, self.item_of[pos]


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
    """Index the prompt and target of every row of ``versions`` as word n-grams."""
    import pyarrow.parquet as pq

    from corpus.quality.text import ngram_hashes

    all_hashes, all_items = [], []
    items: list[tuple[str, str, str]] = []
    short = 0
    for v in versions:
        for shard in catalog.shards(v["id"]):
            table = pq.read_table(root / shard["path"], columns=["id", "prompt", "target"])
            ids = table.column("id").to_pylist()
            base = len(items)
            items.extend((v["source"], v["id"], i) for i in ids)
            for column in ("prompt", "target"):
                texts = table.column(column).to_pylist()
                rows, _, grams, _ = ngram_hashes(texts, n)
                short += sum(1 for t in texts if t and t.strip()) - len(np.unique(rows))
                all_hashes.append(grams)
                all_items.append(rows + base)
    hashes = np.concatenate(all_hashes) if all_hashes else np.zeros(0, np.uint64)
    item_of = np.concatenate(all_items) if all_items else np.zeros(0, np.int64)
    hashes, first = np.unique(hashes, return_index=True)
    return EvalIndex(n, [(v["id"], v["source"]) for v in versions], hashes, item_of[first], items, short)


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
    shard_dir: str = ""                       # shard paths relative to the data root, set by build
    hits: list[Hit] = field(default_factory=list)

    @property
    def config(self) -> dict:
        """What enters the version id: the rule and exactly what it was checked against."""
        return {"policy": self.policy, "n": self.index.n, "against": sorted(v for v, _ in self.index.versions),
                "code": _code_hash()}

    def apply(self, batch, split: str, shard_idx: int):
        """``batch`` (a RowBatch) without its contaminated rows (policy drop) or unchanged (flag)."""
        if len(self.index) == 0 or len(batch) == 0:
            return batch
        found = find_hits(self.index, [f"{p}\n{t}" for p, t in zip(batch.prompts, batch.targets)])
        if not found:
            return batch
        action = "dropped" if self.policy == "drop" else "flagged"
        shard = f"{self.shard_dir}/{split}-{shard_idx:05d}.parquet" if self.shard_dir else f"{split}-{shard_idx:05d}.parquet"
        for row, (benchmark, eval_version, item, ngram) in sorted(found.items()):
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
        if not self.hits:
            return f"decontamination ({self.policy}, {self.index.n}-grams vs {against}): no hits"
        by_bench: dict[str, int] = {}
        for h in self.hits:
            by_bench[h.benchmark] = by_bench.get(h.benchmark, 0) + 1
        what = "dropped" if self.policy == "drop" else "flagged"
        counts = ", ".join(f"{b}: {n}" for b, n in sorted(by_bench.items()))
        return f"decontamination ({self.policy}, {self.index.n}-grams vs {against}): {what} {len(self.hits)} rows ({counts})"


def find_hits(index: EvalIndex, texts: list[str]) -> dict[int, tuple[str, str, str, str]]:
    """Row position → (benchmark, eval version, item, first matching n-gram) for rows with a hit."""
    from corpus.quality.text import ngram_hashes

    rows, starts, grams, flat = ngram_hashes(texts, index.n)
    mask, item_idx = index.lookup(grams)
    out: dict[int, tuple[str, str, str, str]] = {}
    for row, start, item in zip(rows[mask].tolist(), starts[mask].tolist(), item_idx[mask].tolist()):
        if row in out:
            continue
        ngram = " ".join(flat.slice(start, index.n).to_pylist())
        out[row] = (*index.items[item], ngram)
    return out


def prepare(args, catalog, root: Path, kind: str) -> Decontaminator | None:
    """The filter for this build, or None (eval versions and ``--decontaminate off``)."""
    policy = getattr(args, "decontaminate", "drop")
    if kind == "eval" or policy == "off":
        return None
    if args.ngram < 1:
        raise UserError(f"--ngram must be at least 1, got {args.ngram}")
    versions = eval_versions(catalog, getattr(args, "decontaminate_against", None))
    return Decontaminator(build_index(root, catalog, versions, args.ngram), policy)


def _code_hash() -> str:
    """Hash of the code that decides a hit: a change there must change training version ids."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("decontaminate.py", "text.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()[:12]
