"""A version's rows as the mixer sees them: where each row lives, its tier and its length.

Only two narrow reads per shard: the ``tier`` column of the Parquet file and the ``prompt_len`` and
``n_tokens`` columns of the index sidecar (memory-mapped). :func:`shard_tiers` is the one place tiers are
looked up, so a re-tiering rule (tiers stored beside the shard) plugs in there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from corpus.errors import UserError


def shard_tiers(root: Path, shard: dict, rule: str | None = None) -> np.ndarray:
    """The tier of every row of one shard (int8): the shard's ``tier`` column (its build rule), or
    under a re-tiered ``rule`` the side file ``corpus.retier`` wrote (docs/tiers.md)."""
    import pyarrow.parquet as pq

    if rule is not None:
        from corpus.catalog import Catalog
        from corpus.tiers import shard_tiers as retiered

        return retiered(Catalog(root), shard["version"], shard["split"], shard["idx"], rule)
    path = root / shard["path"]
    from corpus.mixing.readcheck import check_registered

    check_registered(root, path)  # a plan is never computed from a damaged shard
    try:
        column = pq.ParquetFile(path).read(columns=["tier"]).column("tier")
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read tiers of {path}: {str(exc).splitlines()[0]}") from None
    return column.to_numpy().astype(np.int8)


@dataclass
class RowPool:
    """Every row of one version's split, flattened in shard order (row ``g`` of the pool)."""

    version: str
    split: str
    shard: np.ndarray  # int32: shard idx of row g
    row: np.ndarray  # int32: row inside that shard
    tier: np.ndarray  # int8
    n_tokens: np.ndarray  # int32
    prompt_len: np.ndarray  # int32

    def __len__(self) -> int:
        return len(self.row)

    def subset(self, keep: np.ndarray) -> "RowPool":
        """The rows where ``keep`` is true, in pool order (e.g. the rows an overlong policy draws)."""
        return RowPool(self.version, self.split, self.shard[keep], self.row[keep], self.tier[keep],
                       self.n_tokens[keep], self.prompt_len[keep])

    def tier_rows(self) -> dict[int, int]:
        tiers, counts = np.unique(self.tier, return_counts=True)
        return {int(t): int(c) for t, c in zip(tiers, counts)}


def load_pool(root: Path, version: str, split: str, shards: list[dict], rule: str | None = None) -> RowPool:
    """The pool of ``version``/``split`` from its catalog shard records (ordered by idx), with
    tiers under ``rule`` (None: the build rule)."""
    from corpus.shards import open_sidecars

    parts: dict[str, list[np.ndarray]] = {"shard": [], "row": [], "tier": [], "n_tokens": [], "prompt_len": []}
    for shard in shards:
        tiers = shard_tiers(root, shard, rule)
        _, index = open_sidecars(root / shard["path"])
        if not (len(tiers) == len(index) == shard["rows"]):
            raise UserError(f"shard {shard['path']} disagrees with the catalog: {len(tiers)} Parquet rows, "
                            f"{len(index)} index rows, {shard['rows']} registered (run python -m corpus.verify)")
        n = len(tiers)
        parts["shard"].append(np.full(n, shard["idx"], dtype=np.int32))
        parts["row"].append(np.arange(n, dtype=np.int32))
        parts["tier"].append(tiers)
        parts["n_tokens"].append(np.asarray(index[:, 2], dtype=np.int32))
        parts["prompt_len"].append(np.asarray(index[:, 1], dtype=np.int32))
    cat = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int32)) for k, v in parts.items()}
    return RowPool(version, split, cat["shard"], cat["row"], cat["tier"].astype(np.int8), cat["n_tokens"],
                   cat["prompt_len"])
