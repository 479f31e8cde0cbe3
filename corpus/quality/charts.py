"""The pictures on the report's ``index.html``, as PNG data URIs (the page stays one file).

Token lengths per source, tiers per version, realized vs target share per window for every
plan (the catalog's ``mix_share_window`` view) and decontamination hits. Superseded versions
are drawn faded and labelled so, beside the latest one of their source. matplotlib is imported
lazily, with the Agg backend (no display).
"""

from __future__ import annotations

import base64
import io
from pathlib import Path

BINS = 40
FADED = 0.35  # alpha of superseded versions


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def data_uri(fig) -> str:
    """The figure as ``data:image/png;base64,...``; closes it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)  # every figure is tight_layout()-ed already
    _pyplot().close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def label(v: dict, standing: dict[str, str]) -> str:
    return f"{v['source']} {v['kind'] or 'train'} {v['id'][:9]} ({standing[v['id']]})"


def token_lengths(catalog, root: Path, versions: list[dict]) -> dict[str, "object"]:
    """Tokens per row of each version, read from its shards' ``n_tokens`` column."""
    import numpy as np
    import pyarrow.parquet as pq

    out: dict[str, list] = {}
    if not versions:
        return {}
    marks = ", ".join("?" for _ in versions)
    for vid, rel in catalog.query(f"SELECT version, path FROM shards WHERE version IN ({marks}) ORDER BY ALL",
                                  [v["id"] for v in versions]):
        path = Path(rel) if Path(rel).is_absolute() else Path(root) / rel
        if path.is_file():
            out.setdefault(vid, []).append(pq.read_table(path, columns=["n_tokens"]).column("n_tokens").to_numpy())
    return {vid: np.concatenate(parts) for vid, parts in out.items()}


def length_histograms(lengths: dict, versions: list[dict], standing: dict[str, str]) -> str | None:
    """One panel per source: rows by tokens per row, the latest version filled, older ones outlined."""
    import numpy as np

    plt = _pyplot()
    sources = sorted({v["source"] for v in versions if v["id"] in lengths})
    if not sources:
        return None
    cols = min(3, len(sources))
    rows = (len(sources) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 2.8 * rows), squeeze=False)
    for ax, source in zip(axes.flat, sources):
        mine = [v for v in versions if v["source"] == source and v["id"] in lengths]
        low = min(int(lengths[v["id"]].min()) for v in mine)
        high = max(int(lengths[v["id"]].max()) for v in mine)
        bins = np.linspace(low, max(high, low + 1) + 1, BINS + 1)
        for v in mine:
            data = lengths[v["id"]]
            latest = standing[v["id"]] == "latest"
            name = f"{v['kind'] or 'train'} {v['id'][:9]} {standing[v['id']]}"
            ax.hist(data, bins=bins, histtype="stepfilled" if latest else "step", alpha=1 if latest else FADED + .3,
                    linewidth=1.2, label=f"{name}: {len(data):,} rows, median {int(np.median(data))}")
        ax.set_title(source, fontsize=10)
        ax.set_xlabel("tokens per row", fontsize=8)
        ax.set_ylabel("rows", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=6.5, loc="upper right", frameon=False)
    for ax in list(axes.flat)[len(sources):]:
        ax.set_visible(False)
    fig.tight_layout()
    return data_uri(fig)


def tier_bars(catalog, versions: list[dict], standing: dict[str, str]) -> str | None:
    """One bar per version: the share of its rows in each tier (under the version's tier rule)."""
    plt = _pyplot()
    counts: dict[str, dict[int, int]] = {}
    if versions:
        marks = ", ".join("?" for _ in versions)
        for vid, tier, rows in catalog.query(  # one query: each connection costs a catalog open
                f"SELECT t.version, t.tier, sum(t.rows) FROM tiers t JOIN versions v ON v.id = t.version "
                f"WHERE t.version IN ({marks}) AND (t.rule IS NULL OR t.rule = v.tier_rule) GROUP BY ALL",
                [v["id"] for v in versions]):
            counts.setdefault(vid, {})[int(tier)] = int(rows)
    shown = [v for v in versions if counts.get(v["id"])]
    if not shown:
        return None
    tiers = sorted({t for c in counts.values() for t in c})
    colors = plt.get_cmap("viridis")([i / max(len(tiers) - 1, 1) for i in range(len(tiers))])
    fig, ax = plt.subplots(figsize=(10, 0.42 * len(shown) + 1.2))
    for y, v in enumerate(shown):
        total = sum(counts[v["id"]].values())
        left = 0.0
        alpha = 1 if standing[v["id"]] == "latest" else FADED
        for tier, color in zip(tiers, colors):
            share = counts[v["id"]].get(tier, 0) / total
            ax.barh(y, share, left=left, color=color, alpha=alpha, edgecolor="white",
                    label=f"tier {tier}" if y == 0 else None)
            if share >= 0.06:
                dark = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2] < 0.5
                ax.text(left + share / 2, y, f"{share:.0%}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
            left += share
        ax.text(1.01, y, f"{total:,} rows", va="center", fontsize=7)
    ax.set_yticks(range(len(shown)), [label(v, standing) for v in shown], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("share of the version's rows", fontsize=8)
    ax.legend(ncol=len(tiers), fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return data_uri(fig)


def plan_windows(catalog) -> list[tuple[dict, str]]:
    """Per plan, over its train windows: each source's realized share (thin line) vs its weight
    (wide pale line), from ``mix_share_window``; beside it, for sources given tier weights, each tier's
    share inside the source vs its (possibly scheduled) target, from ``mix_tier_window``."""
    plt = _pyplot()
    try:
        plans = catalog.query_dicts("SELECT id, name, window_size, train_samples, created_at FROM mixes "
                                    "ORDER BY name, created_at")
        shares = catalog.query("SELECT plan, window_idx, source, positions / window_len, target / window_len "
                               "FROM mix_share_window WHERE split = 'train' ORDER BY plan, source, window_idx")
        tiers = catalog.query("SELECT plan, window_idx, source, tier, share, target_share FROM mix_tier_window "
                              "WHERE split = 'train' AND target_share IS NOT NULL ORDER BY plan, source, tier, "
                              "window_idx")
    except Exception as exc:  # no plan was ever made in this root: the views do not exist yet
        if "does not exist" in str(exc) or "not found" in str(exc).lower():
            return []
        raise
    out = []
    for plan in plans:
        mine = [r for r in shares if r[0] == plan["id"]]
        tiered = [r for r in tiers if r[0] == plan["id"]]
        if not mine:
            continue
        fig, axes = plt.subplots(1, 2 if tiered else 1, figsize=(12 if tiered else 10, 3.4), squeeze=False)
        ax = axes[0][0]
        for i, source in enumerate(sorted({r[2] for r in mine})):
            pts = [r for r in mine if r[2] == source]
            _realized_vs_target(ax, [r[1] for r in pts], [r[3] for r in pts], [r[4] for r in pts], f"C{i % 10}",
                                source)
        _window_axes(ax, plan, "source share of the window")
        if tiered:
            ax = axes[0][1]
            keys = sorted({(r[2], r[3]) for r in tiered})
            for i, (source, tier) in enumerate(keys):
                pts = [r for r in tiered if (r[2], r[3]) == (source, tier)]
                _realized_vs_target(ax, [r[1] for r in pts], [r[4] for r in pts], [r[5] for r in pts],
                                    f"C{i % 10}", f"{source} t{tier}")
            _window_axes(ax, plan, "tier share inside the source")
        fig.suptitle(f"plan {plan['name']} {plan['id']}: {plan['train_samples']:,} train positions "
                     f"(thin: realized, wide pale: target)", fontsize=10)
        fig.tight_layout()
        out.append((plan, data_uri(fig)))
    return out


def _realized_vs_target(ax, x, realized, target, color, name) -> None:
    few = len(x) < 3  # a plan shorter than a few windows: a line would be a dot nobody sees
    ax.plot(x, target, color=color, linewidth=5, alpha=0.3, solid_capstyle="butt",
            marker="s" if few else None, markersize=12)
    ax.plot(x, realized, color=color, linewidth=1.2, label=name, marker="o" if few else None, markersize=5)


def _window_axes(ax, plan: dict, ylabel: str) -> None:
    ax.set_xlabel(f"train window (of {plan['window_size']:,} positions)", fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lo, hi = ax.get_xlim()
    if hi - lo < 2:  # one or two windows: whole-window ticks only
        import math

        ax.set_xticks(range(math.ceil(lo), math.floor(hi) + 1))
        ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_ylim(0, ax.get_ylim()[1] * 1.3)  # room for the legend above the highest line
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7, ncol=2, loc="upper right", frameon=False)


def decontamination_bars(catalog, versions: list[dict], standing: dict[str, str]) -> str | None:
    """Hits per version and benchmark, split by action (dropped rows vs flagged ones)."""
    plt = _pyplot()
    ids = [v["id"] for v in versions]
    if not ids:
        return None
    marks = ", ".join("?" for _ in ids)
    rows = catalog.query(f"SELECT version, benchmark, action, count(*) FROM decontamination "
                         f"WHERE version IN ({marks}) GROUP BY ALL ORDER BY ALL", ids)
    if not rows:
        return None
    by_id = {v["id"]: v for v in versions}
    bars = sorted({(r[0], r[1]) for r in rows}, key=lambda b: (ids.index(b[0]), b[1]))
    actions = sorted({r[2] for r in rows})
    n = {(r[0], r[1], r[2]): r[3] for r in rows}
    fig, ax = plt.subplots(figsize=(10, 0.4 * len(bars) + 1.3))
    for a, action in enumerate(actions):
        left = [sum(n.get((vid, bench, prev), 0) for prev in actions[:a]) for vid, bench in bars]
        width = [n.get((vid, bench, action), 0) for vid, bench in bars]
        alphas = [1 if standing[vid] == "latest" else FADED for vid, _ in bars]
        for y, (lft, w, alpha) in enumerate(zip(left, width, alphas)):
            ax.barh(y, w, left=lft, color=f"C{3 + a}", alpha=alpha, label=action if y == 0 else None)
            if w:
                ax.text(lft + w, y, f" {w:,}", va="center", fontsize=7)
    ax.set_yticks(range(len(bars)), [f"{label(by_id[vid], standing)} vs {bench}" for vid, bench in bars], fontsize=8)
    ax.invert_yaxis()
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    lo, hi = ax.get_xlim()
    if hi - lo < 2:  # one or two windows: whole-window ticks only
        import math

        ax.set_xticks(range(math.ceil(lo), math.floor(hi) + 1))
        ax.set_xlim(lo - 0.5, hi + 0.5)
    ax.set_xlabel("training rows sharing an n-gram with the benchmark", fontsize=8)
    ax.legend(fontsize=7, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=len(actions))
    fig.tight_layout()
    return data_uri(fig)
