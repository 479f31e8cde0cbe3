"""SQL views for auditing plans: realized vs target share per source and tier, per window and
overall, and "what will positions i..j see".

The views read every plan's Parquet in place (``<root>/mixes/*/*/plan-*.parquet``); DuckDB needs
the glob as a constant, so they are (re)created with the data root's absolute path whenever a
plan is registered (``python -m corpus.mix`` also refreshes them). Targets come from the catalog
tables ``mixes``, ``mix_components`` and ``mix_tier_targets``.
"""

from __future__ import annotations

from pathlib import Path

VIEW_NAMES = ("mix_positions", "mix_share", "mix_share_window", "mix_tier_share", "mix_tier_window")


def plan_glob(root: Path) -> str:
    return str((Path(root) / "mixes").resolve() / "*" / "*" / "plan-*.parquet").replace("'", "''")


def view_sql(root: Path) -> list[str]:
    glob = plan_glob(root)
    return [
        # every position of every plan
        f"""CREATE OR REPLACE VIEW mix_positions AS
        SELECT plan, split, position, source, version, shard, "row", tier, n_tokens, epoch
        FROM read_parquet('{glob}')""",
        # overall realized share per source vs its weight
        """CREATE OR REPLACE VIEW mix_share AS
        WITH c AS (SELECT plan, split, source, count(*) AS positions, sum(n_tokens) AS tokens
                   FROM mix_positions GROUP BY ALL)
        SELECT c.plan, c.split, c.source, k.weight AS target_share, c.positions,
               c.positions / sum(c.positions) OVER (PARTITION BY c.plan, c.split) AS realized_share,
               realized_share - target_share AS error,
               c.tokens, c.tokens / sum(c.tokens) OVER (PARTITION BY c.plan, c.split) AS token_share
        FROM c JOIN mix_components k ON k.mix = c.plan AND k.source = c.source""",
        # per window of window_size consecutive positions: count vs window_len * weight
        """CREATE OR REPLACE VIEW mix_share_window AS
        WITH c AS (SELECT p.plan, p.split, p.position // m.window_size AS window_idx, p.source,
                          count(*) AS positions
                   FROM mix_positions p JOIN mixes m ON m.id = p.plan GROUP BY ALL)
        SELECT c.plan, c.split, c.window_idx, c.window_idx * m.window_size AS first_position,
               least(m.window_size, (CASE c.split WHEN 'train' THEN m.train_samples ELSE m.val_samples END)
                     - c.window_idx * m.window_size) AS window_len,
               c.source, c.positions, window_len * k.weight AS target, c.positions - target AS error
        FROM c JOIN mixes m ON m.id = c.plan
               JOIN mix_components k ON k.mix = c.plan AND k.source = c.source""",
        # overall tier mix inside each source vs the tier weights (scheduled ones averaged)
        """CREATE OR REPLACE VIEW mix_tier_share AS
        WITH c AS (SELECT plan, split, source, tier, count(*) AS positions FROM mix_positions GROUP BY ALL),
             t AS (SELECT mix, split, source, tier, sum(target) AS target FROM mix_tier_targets GROUP BY ALL)
        SELECT c.plan, c.split, c.source, c.tier, c.positions,
               c.positions / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.source) AS share,
               t.target / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.source) AS target_share
        FROM c LEFT JOIN t ON t.mix = c.plan AND t.split = c.split AND t.source = c.source AND t.tier = c.tier""",
        # per window: the tier mix inside each source vs the (possibly scheduled) tier weights
        """CREATE OR REPLACE VIEW mix_tier_window AS
        WITH c AS (SELECT p.plan, p.split, p.position // m.window_size AS window_idx, p.source, p.tier,
                          count(*) AS positions
                   FROM mix_positions p JOIN mixes m ON m.id = p.plan GROUP BY ALL)
        SELECT c.plan, c.split, c.window_idx, c.source, c.tier, c.positions,
               c.positions / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.window_idx, c.source) AS share,
               t.target AS target_positions,
               t.target / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.window_idx, c.source) AS target_share
        FROM c LEFT JOIN mix_tier_targets t ON t.mix = c.plan AND t.split = c.split
             AND t.window_idx = c.window_idx AND t.source = c.source AND t.tier = c.tier""",
        # what positions first..last of a plan's train split will see, with the shard file to open
        """CREATE OR REPLACE MACRO mix_range(plan_id, first_pos, last_pos) AS TABLE
        SELECT p.position, p.source, p.version, p.shard, p."row", p.tier, p.n_tokens, p.epoch, s.path AS shard_path
        FROM mix_positions p
        LEFT JOIN shards s ON s.version = p.version AND s.split = p.split AND s.idx = p.shard
        WHERE p.plan = plan_id AND p.split = 'train' AND p.position BETWEEN first_pos AND last_pos
        ORDER BY p.position""",
    ]


def create_views(con, root: Path) -> None:
    """(Re)create the audit views; a no-op until the first plan file exists (the glob must match)."""
    if not any((Path(root) / "mixes").glob("*/*/plan-*.parquet")):
        return
    for sql in view_sql(root):
        con.execute(sql)
