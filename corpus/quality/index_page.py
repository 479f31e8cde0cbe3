"""``DIR/index.html``: the report's front page, one self-contained file that needs no network.

The versions (latest and superseded told apart, each linking to its own Data Docs pages), the
pictures from :mod:`corpus.quality.charts` embedded as data URIs, then the markdown summary
rendered as HTML.
"""

from __future__ import annotations

import html
from pathlib import Path

STYLE = (
    "body{font-family:system-ui,'DejaVu Sans',sans-serif;margin:2em auto;max-width:82em;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}.nowrap{white-space:nowrap}"
    "td,th{border:1px solid #bbb;padding:.2em .45em;vertical-align:top;font-size:.92em}"
    "th{background:#eee}code{background:#f4f4f4}strong{font-size:1.2em}img{max-width:100%;display:block;"
    "margin:.5em 0 1.5em}.latest{color:#1e7e34;font-weight:600}.superseded{color:#777}"
    ".failed{color:#c82333;font-weight:600}tr.row-superseded td{background:#f6f6f6;color:#666}"
    ".docs a{margin-right:.6em;white-space:nowrap}.note{color:#555}"
)


def standing(versions: list[dict]) -> dict[str, str]:
    """``latest`` for the newest published version of each (source, kind), ``superseded`` for the
    older published ones, the status itself (``failed``, ...) for the rest."""
    out, newest = {}, {}
    for v in versions:
        if v["status"] == "published":
            key = (v["source"], v["kind"] or "train")
            if key not in newest or (v["created_at"], v["id"]) > (newest[key]["created_at"], newest[key]["id"]):
                newest[key] = v
    latest = {v["id"] for v in newest.values()}
    for v in versions:
        out[v["id"]] = "latest" if v["id"] in latest else "superseded" if v["status"] == "published" else v["status"]
    return out


def write_index(out: Path, markdown: str, catalog, root: Path, versions: list[dict], docs_index: Path | None,
                pages: list) -> Path:
    """Write ``out/index.html`` and return its path."""
    from markdown_it import MarkdownIt

    from corpus.quality import charts

    marks = standing(versions)
    ordered = sorted(versions, key=lambda v: (v["source"], v["kind"] or "train", marks[v["id"]] != "latest",
                                              -(v["created_at"].timestamp() if v["created_at"] else 0)))
    parts = [_versions_table(out, ordered, marks, docs_index, pages), "<h2>Pictures</h2>"]
    lengths = charts.token_lengths(catalog, root, ordered)
    figures = [
        ("Token length per row, by source", charts.length_histograms(lengths, ordered, marks), "no shards to read"),
        ("Tiers per version", charts.tier_bars(catalog, ordered, marks), "no tier counts"),
        ("Decontamination hits", charts.decontamination_bars(catalog, ordered, marks),
         "no training row shares an n-gram with an evaluation set"),
    ]
    for title, uri, empty in figures:
        picture = f'<img alt="{title}" src="{uri}">' if uri else f'<p class="note">None: {empty}.</p>'
        parts.append(f"<h3>{title}</h3>{picture}")
    plans = charts.plan_windows(catalog)
    parts.append("<h3>Plans: realized vs target share per window</h3>")
    parts += [f'<img alt="plan {html.escape(p["name"])} {p["id"]}" src="{uri}">' for p, uri in plans] or [
        '<p class="note">No mix plan in this data root (python -m corpus.mix MANIFEST makes one).</p>']
    head, _, rest = markdown.partition("\n## ")  # title, verdict and overview table first; details last
    md = MarkdownIt("commonmark").enable("table")
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>Data quality report</title>"
            f"<style>{STYLE}</style></head><body>" + md.render(head) + "".join(parts) + "<hr>"
            + md.render("## " + rest if rest else "") + "</body></html>")
    path = out / "index.html"
    path.write_text(page)
    return path


def _versions_table(out: Path, versions: list[dict], marks: dict[str, str], docs_index: Path | None,
                    pages: list) -> str:
    site = docs_index.parent if docs_index is not None else None
    rows = []
    for v in versions:
        mine = [p for p in pages if p.version == v["id"]]
        links = "<br>".join(
            f"{html.escape(suite)}: " + " ".join(
                f'<a href="{html.escape((site / p.path).relative_to(out).as_posix())}">'
                f'{"&#10004;" if p.success else "&#10008;"} {html.escape(p.batch)}</a>'
                for p in mine if p.suite == suite)
            for suite in sorted({p.suite for p in mine})) or "—"
        mark = marks[v["id"]]
        built = f"{v['created_at']:%Y-%m-%d %H:%M}" if v["created_at"] else ""
        rows.append(f'<tr class="row-{html.escape(mark)}"><td>{html.escape(v["source"])}</td>'
                    f'<td><code>{v["id"]}</code></td><td>{html.escape(v["kind"] or "train")}</td>'
                    f'<td class="{html.escape(mark)}">{html.escape(mark)}</td>'
                    f'<td>{v["rows"] or 0:,}</td><td>{v["tokens"] or 0:,}</td>'
                    f'<td class="nowrap">{built}</td><td class="docs">{links}</td></tr>')
    gx = (f'<p>Great Expectations site: <a href="{html.escape(docs_index.relative_to(out).as_posix())}">'
          f"{html.escape(docs_index.relative_to(out).as_posix())}</a> (renders offline).</p>") if docs_index else ""
    return ("<h2>Versions</h2>"
            '<p class="note"><span class="latest">latest</span>: the newest published version of its source and '
            'kind (what "latest" in a manifest resolves to, tokenizer permitting); <span class="superseded">'
            "superseded</span>: an older published one. Each links to its Data Docs validation pages.</p>"
            "<table><tr><th>source</th><th>version</th><th>kind</th><th>standing</th><th>rows</th><th>tokens</th>"
            "<th>built</th><th>Data Docs</th></tr>" + "".join(rows) + "</table>" + gx)
