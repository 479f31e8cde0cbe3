"""SQL views for auditing plans: realized vs target share per source and tier, per window and
overall, and "what will positions i..j see", and what rows longer than ``max_seq_len`` became
(``mix_overlong``, with the target tokens skipped and cut), and in token-weighted plans each window's
token share (``mix_share_window.token_error``).

``mix_positions`` (and ``mix_range``) read every plan's Parquet in place
(``<root>/mixes/*/*/plan-*.parquet``); DuckDB needs the glob as a constant, so the views are
(re)created with the data root's absolute path whenever a plan is registered or reused. The
share views read ``mix_window_counts``, which DuckDB aggregates from each plan file once, at
registration (plans are immutable), so an audit over millions of positions answers in
milliseconds. Targets come from ``mixes``, ``mix_components`` and ``mix_tier_targets``.
"""

from __future__ import annotations

from pathlib import Path

VIEW_NAMES = ("mix_positions", "mix_share", "mix_share_window", "mix_tier_share", "mix_tier_window", "mix_overlong")


def plan_glob(root: Path) -> str:
    return str((Path(root) / "mixes").resolve() / "*" / "*" / "plan-*.parquet").replace("'", "''")


def view_sql(root: Path) -> list[str]:
    glob = plan_glob(root)
    counts = "(SELECT mix AS plan, split, window_idx, source, tier, positions, tokens FROM mix_window_counts)"
    return [
        # every position of every plan, read from the Parquet files in place
        f"""CREATE OR REPLACE VIEW mix_positions AS
        SELECT plan, split, position, source, version, shard, "row", tier, n_tokens, epoch
        FROM read_parquet('{glob}')""",
        # overall realized share per source vs its weight
        f"""CREATE OR REPLACE VIEW mix_share AS
        WITH c AS (SELECT plan, split, source, sum(positions) AS positions, sum(tokens) AS tokens
                   FROM {counts} GROUP BY ALL)
        SELECT c.plan, c.split, c.source, k.weight AS target_share, c.positions,
               c.positions / sum(c.positions) OVER (PARTITION BY c.plan, c.split) AS realized_share,
               realized_share - target_share AS error,
               c.tokens, c.tokens / sum(c.tokens) OVER (PARTITION BY c.plan, c.split) AS token_share,
               coalesce(m.weight_by, 'samples') AS weight_by
        FROM c JOIN mix_components k ON k.mix = c.plan AND k.source = c.source JOIN mixes m ON m.id = c.plan""",
        # per window of window_size consecutive positions: count vs window_len * weight
        f"""CREATE OR REPLACE VIEW mix_share_window AS
        WITH c AS (SELECT plan, split, window_idx, source, sum(positions) AS positions, sum(tokens) AS tokens
                   FROM {counts} GROUP BY ALL)
        SELECT c.plan, c.split, c.window_idx, c.window_idx * m.window_size AS first_position,
               least(m.window_size, (CASE c.split WHEN 'train' THEN m.train_samples ELSE m.val_samples END)
                     - c.window_idx * m.window_size) AS window_len,
               c.source, c.positions, window_len * k.weight AS target, c.positions - target AS error,
               coalesce(m.weight_by, 'samples') AS weight_by, c.tokens,
               sum(c.tokens) OVER (PARTITION BY c.plan, c.split, c.window_idx) AS window_tokens,
               window_tokens * k.weight AS target_tokens, c.tokens - target_tokens AS token_error
        FROM c JOIN mixes m ON m.id = c.plan
               JOIN mix_components k ON k.mix = c.plan AND k.source = c.source""",
        # overall tier mix inside each source vs the tier weights (scheduled ones averaged)
        f"""CREATE OR REPLACE VIEW mix_tier_share AS
        WITH c AS (SELECT plan, split, source, tier, sum(positions) AS positions FROM {counts} GROUP BY ALL),
             t AS (SELECT mix, split, source, tier, sum(target) AS target FROM mix_tier_targets GROUP BY ALL)
        SELECT c.plan, c.split, c.source, c.tier, c.positions,
               c.positions / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.source) AS share,
               t.target / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.source) AS target_share
        FROM c LEFT JOIN t ON t.mix = c.plan AND t.split = c.split AND t.source = c.source AND t.tier = c.tier""",
        # per window: the tier mix inside each source vs the (possibly scheduled) tier weights
        f"""CREATE OR REPLACE VIEW mix_tier_window AS
        SELECT c.plan, c.split, c.window_idx, c.source, c.tier, c.positions,
               c.positions / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.window_idx, c.source) AS share,
               t.target AS target_positions,
               t.target / sum(c.positions) OVER (PARTITION BY c.plan, c.split, c.window_idx, c.source) AS target_share
        FROM {counts} c LEFT JOIN mix_tier_targets t ON t.mix = c.plan AND t.split = c.split
             AND t.window_idx = c.window_idx AND t.source = c.source AND t.tier = c.tier""",
        # rows longer than the plan's max_seq_len, per plan/split/source: skipped (never drawn) or cut
        """CREATE OR REPLACE VIEW mix_overlong AS
        SELECT mix AS plan, split, source, max_seq_len, policy, rows, skipped_rows,
               skipped_rows / greatest(rows, 1) AS skipped_share, cut_rows, positions, cut_positions,
               cut_positions / greatest(positions, 1) AS cut_share, cut_tokens, target_tokens, skipped_target_tokens,
               cut_target_tokens, cut_target_tokens / greatest(target_tokens, 1) AS cut_target_share
        FROM mix_length_counts""",
        # what positions first..last of a plan's train split will see, with the shard file to open
        """CREATE OR REPLACE MACRO mix_range(plan_id, first_pos, last_pos) AS TABLE
        SELECT p.position, p.source, p.version, p.shard, p."row", p.tier, p.n_tokens, p.epoch, s.path AS shard_path
        FROM mix_positions p
        LEFT JOIN shards s ON s.version = p.version AND s.split = p.split AND s.idx = p.shard
        WHERE p.plan = plan_id AND p.split = 'train' AND p.position BETWEEN first_pos AND last_pos
        ORDER BY p.position""",
    ]


def count_windows(con, plan_file: Path, window: int) -> None:
    """Aggregate one plan file into ``mix_window_counts`` (DuckDB reads the Parquet itself)."""
    path = str(Path(plan_file).resolve()).replace("'", "''")
    con.execute(
        f"""INSERT INTO mix_window_counts
        SELECT plan, split, (position // {int(window)})::INTEGER, source, tier, count(*), sum(n_tokens)
        FROM read_parquet('{path}') GROUP BY ALL""")


def create_views(con, root: Path) -> None:
    """(Re)create the audit views; a no-op until the first plan file exists (the glob must match)."""
    if not any((Path(root) / "mixes").glob("*/*/plan-*.parquet")):
        return
    for sql in view_sql(root):
        con.execute(sql)
