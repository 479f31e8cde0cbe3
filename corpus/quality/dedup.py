"""Exact duplicates by normalized-text hash, within a version and across training versions.

At publish every row's hash (:func:`corpus.quality.text.stable_hashes`) goes to ``row_hashes``.
``duplicates`` then lists each row whose hash an earlier row already had:

* ``within``: an earlier row (by shard, then id) of the same version;
* ``across``: a row of the latest published training version of another source — what a
  ``version = "latest"`` mix would put beside it. :func:`duplicates_among` answers the same
  for any explicit set of versions (a mix plan's).

Duplicates are recorded and reported, not removed; the suites bound the within-version rate.
"""

from __future__ import annotations

from typing import Any


def record(catalog, version_id: str, source: str, kind: str, frame) -> dict[str, int]:
    """Store the version's row hashes and its duplicates; returns ``{"within": n, "across": n}``.

    ``frame``: the version frame (:class:`~corpus.quality.frame.Frame`: split, shard, id, text_hash per row).
    """
    with catalog.connect() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            counts = record_in(con, version_id, source, kind, frame)
            con.execute("COMMIT")
        except Exception:
            from corpus.catalog import rollback

            rollback(con)  # never masks the real error (DuckDB may have rolled back already)
            raise
    return counts


def record_in(con, version_id: str, source: str, kind: str, frame) -> dict[str, int]:
    """:func:`record` on an open connection, inside the caller's transaction."""
    hashes = frame.to_polars(["split", "shard", "id", "text_hash"])
    con.execute("DELETE FROM row_hashes WHERE version = ?", [version_id])
    con.execute("DELETE FROM duplicates WHERE version = ?", [version_id])
    con.register("new_hashes", hashes)
    con.execute("INSERT INTO row_hashes SELECT ?, split, shard, id, text_hash FROM new_hashes", [version_id])
    con.unregister("new_hashes")
    con.execute(
        """
        INSERT INTO duplicates
        SELECT version, split, row_id, text_hash, 'within', version, first_row_id FROM (
            SELECT *, first_value(row_id) OVER w AS first_row_id, row_number() OVER w AS k
            FROM row_hashes WHERE version = ?
            WINDOW w AS (PARTITION BY text_hash ORDER BY shard, row_id))
        WHERE k > 1
        """, [version_id])
    if kind != "eval":
        con.execute(
            f"""
            INSERT INTO duplicates
            SELECT h.version, h.split, h.row_id, h.text_hash, 'across', o.version, min(o.row_id)
            FROM row_hashes h JOIN row_hashes o ON h.text_hash = o.text_hash
            WHERE h.version = ? AND o.version IN ({LATEST_TRAIN}) AND o.version <> h.version
            GROUP BY h.version, h.split, h.row_id, h.text_hash, o.version
            """, [version_id, source])
    counts = dict(con.execute("SELECT scope, count(*) FROM duplicates WHERE version = ? GROUP BY scope",
                              [version_id]).fetchall())
    return {"within": counts.get("within", 0), "across": counts.get("across", 0)}


# The latest published training version of every source other than the parameter's.
LATEST_TRAIN = """
    SELECT id FROM (
        SELECT id, row_number() OVER (PARTITION BY source ORDER BY created_at DESC, id) AS k
        FROM versions WHERE status = 'published' AND coalesce(kind, 'train') <> 'eval' AND source <> ?)
    WHERE k = 1
"""


def duplicates_among(catalog, version_ids: list[str]) -> list[dict[str, Any]]:
    """For each pair of the given versions sharing normalized texts: how many rows, one example.

    The mixer can call this on a plan's versions; hashes exist for every published version.
    """
    if len(version_ids) < 2:
        return []
    marks = ", ".join("?" for _ in version_ids)
    return catalog.query_dicts(
        f"""
        SELECT a.version AS version_a, b.version AS version_b, count(DISTINCT a.row_id) AS rows,
               min(a.row_id) AS example_a, min(b.row_id) AS example_b
        FROM row_hashes a JOIN row_hashes b ON a.text_hash = b.text_hash AND a.version < b.version
        WHERE a.version IN ({marks}) AND b.version IN ({marks})
        GROUP BY a.version, b.version ORDER BY rows DESC
        """, [*version_ids, *version_ids])
