"""Human-readable views of results: the markdown report and the side-by-side comparison."""

from __future__ import annotations

from typing import Any

__all__ = ["markdown", "compare_rows", "compare_table", "headline_table", "comparability", "LOWER_IS_BETTER"]

HEADLINE = ("accuracy", "lenient_accuracy", "lm_eval_strict_match", "lm_eval_flexible_extract", "pass@1", "humaneval/pass@1", "mbpp/pass@1", "ppl", "bits_per_byte", "bleu", "rouge_l",
            "halt_sum_mean", "expected_cycles_mean")
LOWER_IS_BETTER = ("nll", "ppl", "bits_per_byte", "seconds", "dropped_seen")
NEUTRAL = ("n", "windows", "tokens", "bytes", "seed", "n_rationale", "overlap_checked")  # counts, not scores


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return "" if value is None else str(value)


def markdown(doc: dict[str, Any]) -> str:
    """The results document (plain dicts, as in the JSON file) as a markdown report."""
    ck = doc["checkpoint"]
    lines = [f"# Evaluation of {ck.get('tag')}" + (f" (step {ck['step']})" if ck.get("step") is not None else ""), "",
             f"- checkpoint: `{ck.get('path')}`",
             f"- gate scale {ck.get('gate_scale'):.3f}, {ck.get('parameters', 0):,} parameters, "
             f"tokenizer {str(ck.get('tokenizer_sha', ''))[:12]}, device {ck.get('device')}",
             f"- {doc.get('created_at')}, {doc.get('seconds', 0):.1f} s in all"
             + (f", limit {doc['options']['limit']} per dataset" if doc.get("options", {}).get("limit") else ""),
             "", "| suite | status | headline | n | seconds | data |", "|---|---|---|---|---|---|"]
    for name, r in doc["suites"].items():
        if r["status"] == "ok":
            head = ", ".join(f"{k} {_fmt(r['metrics'][k])}" for k in HEADLINE if k in r["metrics"])
            n = r["metrics"].get("n", r["metrics"].get("windows", ""))
            lines.append(f"| {name} | ok | {head} | {_fmt(n)} | {r['seconds']:.1f} | {r.get('data', '')} |")
        else:
            lines.append(f"| {name} | {r['status']} | {r.get('reason', '')} | | {r.get('seconds', 0):.1f} | |")
    for name, r in doc["suites"].items():
        if r["status"] != "ok":
            continue
        lines += ["", f"## {name}", "", "| metric | value |", "|---|---|"]
        lines += [f"| {k} | {_fmt(v)} |" for k, v in r["metrics"].items()]
        for note in r.get("notes", []):
            lines.append(f"\n> {note}")
    return "\n".join(lines) + "\n"


def compare_rows(a: dict[str, Any], b: dict[str, Any]) -> list[tuple[str, Any, Any, float | None]]:
    """``(metric, value in A, value in B, B - A)`` for the union of both flat metric dicts."""
    keys = list(a) + [k for k in b if k not in a]
    rows = []
    for key in keys:
        va, vb = a.get(key), b.get(key)
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (va, vb))
        rows.append((key, va, vb, (vb - va) if numeric else None))
    return rows


def comparability(doc_a: dict[str, Any], doc_b: dict[str, Any]) -> list[str]:
    """Why two results documents do not score the same thing (empty when they do): a different
    ``--limit``, a suite scored on other items (count or ids), other data, or a suite in one only."""
    problems = []
    limit_a, limit_b = (d.get("options", {}).get("limit") for d in (doc_a, doc_b))
    if limit_a != limit_b:
        problems.append(f"--limit differs: A {limit_a or 'none'}, B {limit_b or 'none'}")
    suites_a, suites_b = doc_a.get("suites", {}), doc_b.get("suites", {})
    for name in [n for n in suites_a if n in suites_b]:
        ra, rb = suites_a[name], suites_b[name]
        if ra.get("status") != "ok" or rb.get("status") != "ok":
            if ra.get("status") != rb.get("status"):
                problems.append(f"{name}: {ra.get('status')} in A, {rb.get('status')} in B")
            continue
        ia, ib = ra.get("items") or {}, rb.get("items") or {}
        if ia and ib and ia != ib:
            what = f"{ia['n']} vs {ib['n']} items" if ia["n"] != ib["n"] else f"other items (same count, {ia['n']})"
            problems.append(f"{name}: scored on {what}")
        elif not (ia and ib) and ra.get("metrics", {}).get("n") != rb.get("metrics", {}).get("n"):
            problems.append(f"{name}: n {ra['metrics'].get('n')} vs {rb['metrics'].get('n')}")
        heads_a, heads_b = ({k for k in r.get("metrics", {}) if k in HEADLINE} for r in (ra, rb))
        if heads_a != heads_b:  # e.g. GSM8K's old unnamed "accuracy" vs lenient / lm-eval scores
            problems.append(f"{name}: scored differently (only in A: {', '.join(sorted(heads_a - heads_b)) or '-'}; "
                            f"only in B: {', '.join(sorted(heads_b - heads_a)) or '-'})")
        if ra.get("data") != rb.get("data"):
            problems.append(f"{name}: data from {ra.get('data') or '?'} in A, {rb.get('data') or '?'} in B")
    only = [f"{n} (A only)" for n in suites_a if n not in suites_b] + [f"{n} (B only)" for n in suites_b if n not in suites_a]
    if only:
        problems.append("suites in one result only: " + ", ".join(only))
    return problems


def headline_table(name_a: str, name_b: str, a: dict[str, Any], b: dict[str, Any]):
    """The compact view printed first: one row per suite headline metric (accuracy, pass@1, ppl ...)."""
    keep = {k for k in list(a) + list(b) if k.split("/", 1)[-1] in HEADLINE}
    return compare_table(name_a, name_b, {k: v for k, v in a.items() if k in keep},
                         {k: v for k, v in b.items() if k in keep}, title="headline metrics")


def compare_table(name_a: str, name_b: str, a: dict[str, Any], b: dict[str, Any], title: str | None = None):
    """A rich Table of two runs' metrics with deltas (green = better, red = worse)."""
    from rich.table import Table

    table = Table(title=title or f"{name_a}  vs  {name_b}", show_lines=False,
                  caption="scores (accuracy, pass@1, BLEU, ROUGE-L) in 0-1; ppl and bits/byte lower is better")
    table.add_column("metric")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B - A", justify="right")
    for key, va, vb, delta in compare_rows(a, b):
        shown = ""
        if delta is not None:
            leaf = key.rsplit("/", 1)[-1]
            better = delta < 0 if leaf in LOWER_IS_BETTER else delta > 0
            neutral = delta == 0 or leaf in NEUTRAL or key.startswith("halting/") or "/status/" in key
            style = "" if neutral else ("green" if better else "red")
            shown = f"[{style}]{delta:+.4g}[/]" if style else f"{delta:+.4g}"
        table.add_row(key, _fmt(va), _fmt(vb), shown)
    return table
