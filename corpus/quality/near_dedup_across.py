"""Near-duplicates across sources: a new training version against the latest of every other.

Like exact dedup's ``across`` scope: each row of the new version that is within the threshold of
a row of the latest published training version of another source (what a ``version = "latest"``
mix would put beside it) is recorded in ``near_duplicates`` with ``scope = 'across'`` and the
other version's row as ``duplicate_of``. It is recorded, never dropped: what a version holds must
not depend on which other versions happen to be registered.

Every version built with near-dedup keeps its rows' signatures beside its shards
(``.near-dedup/signatures-<key>.parquet``, registered in ``files``); the key covers what makes
signatures comparable (permutations, seed, shingles, rensa and polars versions). A version
without a file of the same key (built with ``--near-dedup off``, other settings, or before
near-dedup) is not compared, and the build summary says how many were left out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from corpus.quality import near_dedup as nd
from corpus.quality.dedup import LATEST_TRAIN


def compare(catalog, root: Path, version_id: str, source: str, near: "nd.NearDedup", signatures: np.ndarray,
            refs: "nd.RowRefs", own_paths: dict) -> None:
    """Fill ``near.across`` (records) and ``near.across_note`` for ``version_id``'s kept rows.

    ``own_paths``: (split, shard index) → this version's shard file (for the texts)."""
    from corpus.paths import version_dir

    config = near.config
    others = catalog.query_dicts(f"SELECT id, source FROM versions WHERE id IN ({LATEST_TRAIN}) ORDER BY source",
                                 [source])
    compared, missing = [], []
    for other in others:
        path = nd.signatures_path(version_dir(root, other["source"], other["id"]), config)
        if not path.exists():
            missing.append(other["source"])
            continue
        compared.append(other["source"])
        theirs, their_refs = nd.load_signatures(path)
        paths = {(s["split"], s["idx"]): root / s["path"] for s in catalog.shards(other["id"])}
        near.across.extend(_pairs(config, signatures, refs, own_paths, theirs, their_refs, paths, other["id"]))
    note = f"across: {len(near.across)} rows near a row of {', '.join(compared)}" if compared else ""
    if missing:
        note += ("; " if note else "") + (f"not compared with {', '.join(missing)} (no signatures of these settings: "
                                          "built with --near-dedup off or other settings)")
    near.across_note = note


def _pairs(config, mine: np.ndarray, my_refs, my_paths, theirs: np.ndarray, their_refs, their_paths,
           their_version: str) -> list[dict]:
    """Records for my rows within the threshold of one of theirs (the best match of each)."""
    n = len(mine)
    if n == 0 or len(theirs) == 0:
        return []
    both = np.concatenate([mine, theirs])
    pairs = nd.candidate_pairs(both, config.bands)
    pairs = pairs[(pairs[:, 0] < n) & (pairs[:, 1] >= n)]
    estimate = nd.estimated_jaccard(both, pairs)
    keep = estimate >= config.threshold - nd.ESTIMATE_MARGIN
    pairs, estimate = pairs[keep], estimate[keep]
    if not len(pairs):
        return []
    mine_needed, theirs_needed = np.unique(pairs[:, 0]), np.unique(pairs[:, 1] - n)
    ref = lambda refs, paths, i: (paths[(refs.splits[int(refs.split_of[i])], int(refs.shard[i]))],  # noqa: E731
                                  int(refs.position[i]))
    texts = dict(zip(mine_needed.tolist(), nd.read_texts([ref(my_refs, my_paths, i) for i in mine_needed])))
    texts.update(zip((n + theirs_needed).tolist(),
                     nd.read_texts([ref(their_refs, their_paths, i) for i in theirs_needed])))
    keys = sorted(texts)
    shingles = dict(zip(keys, nd.minhash.shingle_arrays([texts[k] for k in keys], config.shingle, config.ngram)))
    verified = np.array([nd.minhash.jaccard(shingles[a], shingles[b]) for a, b in pairs.tolist()])
    best: dict[int, tuple[float, int, float]] = {}
    for (a, b), exact, est in zip(pairs.tolist(), verified.tolist(), estimate.tolist()):
        if exact >= config.threshold and (a not in best or exact > best[a][0]):
            best[a] = (exact, b, est)
    out = []
    for a, (exact, b, est) in sorted(best.items()):
        mine_ref, their_ref = my_refs[a], their_refs[b - n]
        out.append({"split": mine_ref.split, "shard": mine_ref.shard, "row_id": mine_ref.row_id,
                    "duplicate_of_version": their_version, "duplicate_of": their_ref.row_id,
                    "duplicate_of_split": their_ref.split, "cluster": their_ref.row_id,
                    "estimated_jaccard": round(est, 6), "jaccard": round(exact, 6), "scope": "across",
                    "action": "flagged", "text": nd._excerpt(texts[a]), "duplicate_of_text": nd._excerpt(texts[b])})
    return out
