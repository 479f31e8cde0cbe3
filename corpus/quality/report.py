"""``corpus.quality report``: GX Data Docs (HTML) plus one markdown summary from the catalog.

The Data Docs render the validation results stored at publish time (``report_path`` of the
``validations`` table), so the HTML shows exactly what decided each version's status. The
markdown summary covers, per source and version: rows and tokens per split and tier,
quarantined records by reason, expectations passed/failed (with each failure), decontamination
hits (every row, its benchmark and item), duplicates within and across versions, and
near-duplicate rates per version with a few example pairs side by side.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

MAX_LISTED = 50  # decontamination hits listed per version in the markdown (all go to the CSV)


@dataclass
class Report:
    summary: Path
    docs_index: Path | None
    success: bool
    markdown: str


def select_versions(catalog, versions: list[str] | None = None) -> list[dict]:
    """The versions to report: the given ids (or sources), else every version not still building."""
    rows = catalog.query_dicts("SELECT * FROM versions WHERE status <> 'building' ORDER BY source, created_at, id")
    if not versions:
        return rows
    picked = [r for r in rows if r["id"] in versions or r["source"] in versions]
    missing = [v for v in versions if not any(v in (r["id"], r["source"]) for r in rows)]
    if missing:
        from corpus.errors import UserError

        raise UserError(f"no such version or source in the catalog: {', '.join(missing)}")
    return picked


def write_report(catalog, root: Path, out: Path, versions: list[str] | None = None, docs: bool = True) -> Report:
    """Write ``out/summary.md``, ``out/decontamination.csv``, ``out/index.html`` (pictures) and the
    Data Docs under ``out/gx``; all of it renders with no network."""
    from corpus.progress import progress_bar
    from corpus.quality.index_page import write_index

    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    chosen = select_versions(catalog, versions)
    with progress_bar("report", total=3 + bool(docs)) as bar:  # a phase at a time: GX rendering is the long one
        docs_index, pages = None, []
        if docs:
            bar.describe(f"report: Data Docs of {len(chosen)} versions (great-expectations)")
            docs_index, pages = build_data_docs(catalog, root, out, [v["id"] for v in chosen])
            bar.advance()
        bar.describe("report: summary")
        markdown, success = summary_markdown(catalog, root, chosen, docs_index.relative_to(out) if docs_index else None)
        summary = out / "summary.md"
        summary.write_text(markdown)
        bar.advance()
        bar.describe("report: decontamination hits")
        _write_hits_csv(catalog, out / "decontamination.csv", [v["id"] for v in chosen])
        bar.advance()
        bar.describe("report: index.html and its charts")
        write_index(out, markdown, catalog, root, chosen, docs_index, pages)
        bar.advance()
    return Report(summary, docs_index, success, markdown)


# -- Data Docs --------------------------------------------------------------------------------

def build_data_docs(catalog, root: Path, out: Path, version_ids: list[str]) -> tuple[Path, list]:
    """A GX file project in ``out/gx`` holding the stored results, made to render offline.

    Returns the site's index.html and its validation pages (:class:`DocsPage`). Each stored
    result is given the run name ``<source>-<version>`` and the data asset
    ``<source> <version> <shard>`` before rendering, so every page names what it validated.
    """
    from corpus.quality.gx import _quiet_gx
    from corpus.quality.offline_docs import DocsPage, make_offline

    _quiet_gx()
    import great_expectations as gx
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResultSchema
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (ExpectationSuiteIdentifier,
                                                                           ValidationResultIdentifier)

    shutil.rmtree(out / "gx", ignore_errors=True)
    context = gx.get_context(mode="file", project_root_dir=str(out))
    schema = ExpectationSuiteValidationResultSchema()
    marks = ", ".join("?" for _ in version_ids) or "NULL"
    rows = catalog.query_dicts(
        f"SELECT v.source, r.version, r.shard, r.suite, r.success, r.evaluated, r.failed, r.report_path, "
        f"r.validated_at FROM validations r JOIN versions v ON v.id = r.version "
        f"WHERE r.version IN ({marks}) AND r.report_path IS NOT NULL "
        f"ORDER BY v.source, r.version, r.shard, r.suite", version_ids)
    pages = []
    for row in rows:
        path = root / row["report_path"]
        if not path.is_file():
            continue
        stem = Path(row["shard"]).stem if row["shard"].endswith(".parquet") else "version"
        run_time = (row["validated_at"] or datetime.now()).replace(tzinfo=timezone.utc)
        run_id = RunIdentifier(run_name=f"{row['source']}-{row['version']}", run_time=run_time)
        data = json.loads(path.read_text())
        meta = data.setdefault("meta", {})
        meta["run_id"] = run_id.to_json_dict()
        meta.setdefault("batch_spec", {})["data_asset_name"] = f"{row['source']} {row['version']} {stem}"
        key = ValidationResultIdentifier(expectation_suite_identifier=ExpectationSuiteIdentifier(name=row["suite"]),
                                         run_id=run_id, batch_identifier=stem)
        context.validation_results_store.set(key, schema.load(data))
        page = Path("validations", *row["suite"].split("."), *key.to_tuple()[-3:]).with_suffix(".html")
        pages.append(DocsPage(row["source"], row["version"], row["suite"], stem, f"{run_time:%Y-%m-%d %H:%M:%S} UTC",
                              bool(row["success"]), int(row["evaluated"] or 0), int(row["failed"] or 0), page))
    sites = context.build_data_docs()
    index = Path(sites["local_site"].removeprefix("file://"))
    make_offline(index.parent, pages)
    return index, pages


# -- markdown ---------------------------------------------------------------------------------

def summary_markdown(catalog, root: Path, versions: list[dict], docs: Path | None) -> tuple[str, bool]:
    """The markdown summary and whether everything passed."""
    ids = [v["id"] for v in versions]
    facts = _facts(catalog, ids)
    failed_versions = [v for v in versions if v["status"] != "published"]
    failed_runs = sum(f["suites_failed"] for f in facts.values())
    success = bool(versions) and not failed_versions and failed_runs == 0
    lines = [
        "# Data quality report",
        "",
        f"Data root `{root}` · {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
        + (f" · Data Docs: [{docs}]({docs})" if docs else ""),
        "",
        f"**{'PASS' if success else 'FAIL'}**: {len(versions)} versions, "
        f"{sum(v['status'] == 'published' for v in versions)} published, "
        f"{sum(v['status'] == 'failed' for v in versions)} failed"
        + (f", {sum(v['status'] not in ('published', 'failed') for v in versions)} other" if any(
            v["status"] not in ("published", "failed") for v in versions) else "") + ".",
        "",
        "| source | version | kind | status | rows | tokens | quarantined | expectations ok / failed "
        "| decontamination | duplicates within / across |",
        "|---|---|---|---|--:|--:|--:|--:|---|--:|",
    ]
    for v in versions:
        f = facts[v["id"]]
        lines.append(
            f"| {v['source']} | `{v['id']}` | {v['kind'] or 'train'} | {v['status']} | {v['rows'] or 0:,} "
            f"| {v['tokens'] or 0:,} | {v['quarantined'] or 0:,} | {f['passed']} / {f['failed']}"
            + (f" (+{f['warnings']} warning{'s' * (f['warnings'] > 1)})" if f["warnings"] else "") + " "
            f"| {_hits_cell(f['hits'])} | {f['dup_within']} / {f['dup_across']} |")
    if not versions:
        lines.append("| (no versions) | | | | | | | | | |")
    for v in versions:
        lines += _version_section(catalog, v, facts[v["id"]])
    lines += _across_section(catalog, versions)
    lines += _near_section(catalog, versions)
    lines += _overlong_section(catalog)
    return "\n".join(lines) + "\n", success


def _facts(catalog, ids: list[str]) -> dict[str, dict]:
    out = {i: {"passed": 0, "failed": 0, "warnings": 0, "suites_failed": 0, "hits": Counter(), "dup_within": 0,
               "dup_across": 0, "engines": []} for i in ids}
    if not ids:
        return out
    marks = ", ".join("?" for _ in ids)
    for vid, evaluated, failed, bad in catalog.query(
            f"SELECT version, sum(evaluated), sum(failed), sum(CASE WHEN success THEN 0 ELSE 1 END) "
            f"FROM validations WHERE version IN ({marks}) GROUP BY version", ids):
        out[vid].update(passed=int(evaluated - failed), failed=int(failed), suites_failed=int(bad))
    for vid, engine in catalog.query(f"SELECT DISTINCT version, engine FROM validations WHERE version IN ({marks}) "
                                     f"AND engine IS NOT NULL ORDER BY engine", ids):
        out[vid]["engines"].append(engine)
    for vid, text in catalog.query(f"SELECT version, failed_expectations FROM validations WHERE version IN ({marks})",
                                   ids):
        warned = sum(f.get("severity") == "warning" for f in json.loads(text or "[]"))
        out[vid]["warnings"] += warned
        out[vid]["passed"] -= warned  # a warning did not pass either; it just does not gate
    for vid, action, n in catalog.query(
            f"SELECT version, action, count(*) FROM decontamination WHERE version IN ({marks}) GROUP BY ALL", ids):
        out[vid]["hits"][action] = n
    for vid, scope, n in catalog.query(
            f"SELECT version, scope, count(*) FROM duplicates WHERE version IN ({marks}) GROUP BY ALL", ids):
        out[vid][f"dup_{scope}"] = n
    for (vid,) in catalog.query(f"SELECT version FROM version_counters WHERE version IN ({marks}) "
                                f"AND name = 'not decontaminated'", ids):
        out[vid]["hits"]["not decontaminated"] = 1
    return out


def _hits_cell(hits: Counter) -> str:
    """``3 dropped``; a benchmark's training version checked against no eval set of its own says so."""
    return ", ".join(action if action == "not decontaminated" else f"{n} {action}"
                     for action, n in sorted(hits.items())) or "none"


def _version_section(catalog, v: dict, f: dict) -> list[str]:
    vid = v["id"]
    lines = ["", f"## {v['source']} `{vid}` — {v['status']}", ""]
    tiers = catalog.query(
        "SELECT split, tier, sum(rows), sum(tokens) FROM tiers WHERE version = ? AND (rule IS NULL OR rule = ?) "
        "GROUP BY split, tier ORDER BY split, tier", [vid, v["tier_rule"]])
    if tiers:
        lines += [f"Rows and tokens per split and tier (rule `{v['tier_rule']}`):", "",
                  "| split | tier | rows | tokens |", "|---|--:|--:|--:|"]
        lines += [f"| {split} | {tier} | {rows:,} | {tokens:,} |" for split, tier, rows, tokens in tiers]
        lines.append("")
    reasons = Counter()
    for (reason,) in catalog.query("SELECT reason FROM quarantine WHERE version = ?", [vid]):
        reasons[re.sub(r"\d+", "N", reason.split(":")[0])] += 1
    lines.append("Quarantined: " + (", ".join(f"{r}: {n}" for r, n in reasons.most_common()) or "none") + ".")
    lines += ["", f"Expectations: {f['passed']} passed, {f['failed']} failed"
              + (f", {f['warnings']} warned (not gating)." if f["warnings"] else ".")
              + (f" Engine: {', '.join(f['engines'])}." if f["engines"] else "")]
    from corpus.publish import failing_expectations

    failing = failing_expectations(catalog, vid, limit=20)
    if failing:
        lines += ["", "Failing expectations:", ""] + [f"- {line}" for line in failing]
    warnings = failing_expectations(catalog, vid, limit=20, severity="warning")
    if warnings:
        lines += ["", "Warnings (reported, not gating):", ""] + [f"- {line}" for line in warnings]
    hits = catalog.query_dicts(
        "SELECT split, shard, row_id, benchmark, item, ngram, action FROM decontamination WHERE version = ? "
        "ORDER BY shard, row_id", [vid])
    lines += ["", f"Decontamination: {_hits_cell(f['hits'])}" + ("." if not hits else ":")]
    if hits:
        lines += ["", "| row | action | benchmark | eval item | shared n-gram |", "|---|---|---|---|---|"]
        for h in hits[:MAX_LISTED]:
            lines.append(f"| `{h['row_id']}` | {h['action']} | {h['benchmark']} | `{h['item']}` "
                         f"| {_cell(h['ngram'])} |")
        if len(hits) > MAX_LISTED:
            lines.append(f"| … {len(hits) - MAX_LISTED} more in decontamination.csv | | | | |")
    dups = catalog.query(
        "SELECT scope, row_id, first_version, first_row_id FROM duplicates WHERE version = ? "
        "ORDER BY scope DESC, row_id LIMIT 3", [vid])
    lines += ["", f"Duplicates (normalized text): {f['dup_within']} within the version, "
                  f"{f['dup_across']} in the latest training version of another source"
              + ("; e.g. " + ", ".join(f"`{r}` = `{fr}`" + (f" ({fv})" if fv != vid else "")
                                      for _, r, fv, fr in dups) if dups else "") + "."]
    return lines


def _across_section(catalog, versions: list[dict]) -> list[str]:
    from corpus.quality.dedup import duplicates_among

    latest: dict[str, dict] = {}
    for v in versions:
        if v["status"] == "published" and (v["kind"] or "train") != "eval":
            latest[v["source"]] = v  # versions come ordered by created_at: the last wins
    pairs = duplicates_among(catalog, [v["id"] for v in latest.values()])
    source = {v["id"]: v["source"] for v in latest.values()}
    lines = ["", "## Duplicates across sources (latest published training version of each)", ""]
    if not pairs:
        return lines + ["None."]
    lines += ["| version A | version B | rows | example |", "|---|---|--:|---|"]
    for p in pairs:
        lines.append(f"| {source[p['version_a']]} `{p['version_a']}` | {source[p['version_b']]} `{p['version_b']}` "
                     f"| {p['rows']:,} | `{p['example_a']}` |")
    return lines


NEAR_EXAMPLES = 3  # near-duplicate pairs shown side by side per version


def _near_section(catalog, versions: list[dict]) -> list[str]:
    """Near-duplicate rates per version (MinHash-LSH, verified Jaccard) and example pairs side by side."""
    ids = [v["id"] for v in versions]
    lines = ["", "## Near-duplicates (MinHash-LSH, verified Jaccard; corpus/quality/near_dedup.py)", ""]
    marks = ", ".join("?" for _ in ids) or "NULL"
    runs = {r["version"]: r for r in catalog.query_dicts(
        f"SELECT * FROM near_dedup_runs WHERE version IN ({marks})", ids)}
    if not runs:
        return lines + ["No version was checked (built with --near-dedup off, or before near-dedup existed)."]
    lines += ["| source | version | policy | rule | rows | near-duplicates | rate | clusters | across sources |",
              "|---|---|---|---|--:|--:|--:|--:|--:|"]
    for v in versions:
        r = runs.get(v["id"])
        if r is None:
            lines.append(f"| {v['source']} | `{v['id']}` | off | | {v['rows'] or 0:,} | | | | |")
            continue
        rule = f"J ≥ {r['threshold']:g}, {r['shingle']} {r['ngram']}-grams, {r['permutations']}/{r['bands']} bands"
        lines.append(f"| {v['source']} | `{v['id']}` | {r['policy']} | {rule} | {r['rows']:,} | "
                     f"{r['near_duplicates']:,} | {r['near_duplicates'] / max(1, r['rows']):.2%} | {r['clusters']:,} "
                     f"| {r['across'] or 0:,} |")
    for v in versions:
        examples = catalog.query_dicts(
            "SELECT row_id, duplicate_of, cluster, jaccard, estimated_jaccard, action, text, duplicate_of_text "
            "FROM near_duplicates WHERE version = ? ORDER BY jaccard, scope DESC, row_id LIMIT ?",
            [v["id"], NEAR_EXAMPLES])
        if not examples:
            continue
        lines += ["", f"{v['source']} `{v['id']}`: lowest-Jaccard pairs, side by side", "",
                  "| row | its text | duplicate of | that text | Jaccard (est.) | action |", "|---|---|---|---|--:|---|"]
        for e in examples:
            lines.append(f"| `{e['row_id']}` | {_cell(e['text'], 160)} | `{e['duplicate_of']}` "
                         f"| {_cell(e['duplicate_of_text'], 160)} | {e['jaccard']:.3f} ({e['estimated_jaccard']:.2f}) "
                         f"| {e['action']} |")
    return lines


def _overlong_section(catalog) -> list[str]:
    """Per plan and source (train split): what rows longer than the plan's max_seq_len became, and
    the target tokens they took with them (corpus.mixing; the mix_overlong view)."""
    import duckdb

    try:
        rows = catalog.query_dicts(
            "SELECT m.name, l.mix, l.source, l.policy, l.max_seq_len, l.rows, l.skipped_rows, l.positions, "
            "l.cut_positions, l.target_tokens, l.skipped_target_tokens, l.cut_target_tokens "
            "FROM mix_length_counts l JOIN mixes m ON m.id = l.mix WHERE l.split = 'train' "
            "ORDER BY m.created_at, l.mix, l.source")
    except duckdb.Error:  # a catalog without plans (or from before they counted targets)
        rows = []
    lines = ["", "## Rows longer than each plan's max_seq_len (train split; mix_overlong)", ""]
    if not rows:
        return lines + ["No plans."]
    lines += ["| plan | source | policy | max_seq_len | rows skipped | positions cut | target tokens skipped "
              "| target tokens cut |", "|---|---|---|--:|--:|--:|--:|--:|"]
    for r in rows:
        target = r["target_tokens"]
        share = (lambda n: f"{n or 0:,} ({(n or 0) / target:.1%})" if target else "n/a")  # noqa: E731
        lines.append(f"| {r['name']} `{r['mix']}` | {r['source']} | {r['policy']} | {r['max_seq_len']} "
                     f"| {r['skipped_rows']:,} of {r['rows']:,} | {r['cut_positions']:,} of {r['positions']:,} "
                     f"| {share(r['skipped_target_tokens'])} | {share(r['cut_target_tokens'])} |")
    return lines


def _cell(text: str | None, width: int = 80) -> str:
    text = (text or "").replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= width else text[: width - 1] + "…"


def _write_hits_csv(catalog, path: Path, ids: list[str]) -> None:
    import csv

    marks = ", ".join("?" for _ in ids) or "NULL"
    rows = catalog.query(
        f"SELECT version, split, shard, row_id, benchmark, eval_version, item, ngram, action FROM decontamination "
        f"WHERE version IN ({marks}) ORDER BY version, shard, row_id", ids)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["version", "split", "shard", "row_id", "benchmark", "eval_version", "item", "ngram", "action"])
        writer.writerows(rows)

