"""Make a GX Data Docs site render with no network.

GX's pages load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs, and its
index fills the validations table with JavaScript: offline the index is blank and every Status
cell (a Font Awesome icon) is empty. Rewriting the generated HTML is cheaper and sturdier than
vendoring those libraries: every remote ``<script>``/``<link>`` goes, a small stylesheet of our
own (``data_docs_offline.css``: the classes GX's templates use, icons as Unicode glyphs) and a
few lines of plain JavaScript for the "Failed Only" filter are inlined, the logo points at GX's
own local copy, and the index gets a static table of the validations.
"""

from __future__ import annotations

import html
import os
import re
from dataclasses import dataclass
from pathlib import Path

CSS = Path(__file__).with_name("data_docs_offline.css")

REMOTE_SCRIPT = re.compile(r'<script\b[^>]*\bsrc="https?://[^"]*"[^>]*>\s*</script>\s*', re.I)
REMOTE_LINK = re.compile(r'<link\b[^>]*\bhref="https?://[^"]*"[^>]*>\s*', re.I)
INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>\s*", re.S | re.I)
FOOTER = re.compile(r"<footer\b.*?</footer>\s*", re.S | re.I)
REMOTE_LOGO = re.compile(r'https://great-expectations-web-assets\.[^"\')]*?(logo-long|full_logo_dark)\.png[^"\')]*')
EMPTY_INDEX_TABLE = re.compile(r'<table\s+id="([^"]*-body-table)"[^>]*data-toggle="table"[^>]*>\s*</table>', re.S)
STATIC_REF = re.compile(r'((?:src|href)=")(?:\./|(?:\.\./)+)?static/')  # GX miscounts the depth of some pages
LOCAL_LINK = re.compile(r'<a\b[^>]*\bhref="([^"#:?]+)"[^>]*>(.*?)</a>', re.S)
CTA_SCRIPT = re.compile(r"sessionStorage|\$\(|jQuery|bootstrapTable|vegaEmbed")

# "Show All" / "Failed Only" on validation pages, without jQuery (same targets as GX's own)
FILTER_JS = """<script>
function hrmFailedOnly(on) {
  const show = (el) => { if (el) el.style.display = on ? "none" : ""; };
  document.querySelectorAll(".hide-succeeded-validation-target-child").forEach((e) => show(e.parentElement));
  document.querySelectorAll(".hide-succeeded-validation-target").forEach(show);
  document.querySelectorAll(".hide-succeeded-validations-column-section-target-child").forEach((e) => {
    const section = e.parentElement && e.parentElement.parentElement;
    show(section);
    if (section && section.id) document.querySelectorAll('a[href$="' + section.id + '"]').forEach(show);
  });
}
function showAllValidations() { hrmFailedOnly(false); }
function hideSucceededValidations() { hrmFailedOnly(true); }
</script>
"""


@dataclass
class DocsPage:
    """One validation page of the site, as the index table lists it."""

    source: str
    version: str
    suite: str
    batch: str
    run_time: str
    success: bool
    evaluated: int
    failed: int
    path: Path  # relative to the site root


def make_offline(site: Path, pages: list[DocsPage]) -> None:
    """Rewrite every HTML file under ``site`` in place; the index gets the static table."""
    css = CSS.read_text()
    for page in sorted(site.rglob("*.html")):
        text = page.read_text()
        static = Path(os.path.relpath(site / "static", page.parent)).as_posix()
        text = offline_html(text, css, static)
        if page == site / "index.html":
            text = EMPTY_INDEX_TABLE.sub(lambda m: index_table(pages, m.group(1)), text, count=1)
        page.write_text(unlink_missing(text, page.parent))


def offline_html(text: str, css: str, static: str) -> str:
    """One page without remote assets or jQuery code, with the offline stylesheet and filter."""
    text = REMOTE_SCRIPT.sub("", text)
    text = REMOTE_LINK.sub("", text)
    text = INLINE_SCRIPT.sub(lambda m: "" if CTA_SCRIPT.search(m.group(1)) else m.group(0), text)
    text = FOOTER.sub("", text)
    text = REMOTE_LOGO.sub(f"{static}/images/logo-long.png", text)
    text = STATIC_REF.sub(lambda m: f"{m.group(1)}{static}/", text)
    text = text.replace("</head>", f"<style>{css}</style>\n</head>", 1)
    return text.replace("</body>", FILTER_JS + "</body>", 1)


def unlink_missing(text: str, folder: Path) -> str:
    """Links to pages this site does not have (GX links each result to an expectation suite page,
    and the report stores results only) become plain text instead of a dead end."""
    return LOCAL_LINK.sub(lambda m: m.group(0) if (folder / m.group(1)).exists() else f"<span>{m.group(2)}</span>",
                          text)


def index_table(pages: list[DocsPage], table_id: str) -> str:
    """The validations list GX's index would have built in the browser, as plain HTML."""
    head = ("<tr><th>Status</th><th>Source</th><th>Version</th><th>Suite</th><th>Batch</th>"
            "<th>Expectations ok / failed</th><th>Run time</th></tr>")
    rows = []
    for p in sorted(pages, key=lambda p: (p.source, p.version, p.suite, p.batch)):
        status = ('<span class="hrm-docs-status-ok">&#10004; passed</span>' if p.success
                  else '<span class="hrm-docs-status-failed">&#10008; failed</span>')
        link = html.escape(p.path.as_posix())
        rows.append(
            f"<tr><td>{status}</td><td>{html.escape(p.source)}</td><td><code>{html.escape(p.version)}</code></td>"
            f'<td><a href="{link}">{html.escape(p.suite)}</a></td><td><a href="{link}">{html.escape(p.batch)}</a></td>'
            f"<td>{p.evaluated - p.failed} / {p.failed}</td><td>{html.escape(p.run_time)}</td></tr>")
    if not rows:
        rows.append('<tr><td colspan="7">No validation results in this report.</td></tr>')
    return (f'<p class="hrm-docs-note">{len(pages)} validation result{"s" * (len(pages) != 1)}; '
            f"each row opens its page.</p>"
            f'<table id="{table_id}" class="table table-sm table-bordered hrm-docs-validations">'
            f"<thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>")
