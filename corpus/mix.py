"""``python -m corpus.mix manifests/X.toml``: resolve a manifest to its deterministic mix plan.

Builds what the manifest says how to build when it is missing (tokenizer, source versions),
writes ``data/mixes/<mix>/<plan-id>/plan-{train,val}.parquet`` unless that plan already exists,
and prints target vs realized proportions. The same manifest and seed always give the same plan
id and the same bytes.
"""

from __future__ import annotations

import argparse
import sys


CONFIRM_ENV = "HRM_EXPORT_CONFIRM_BYTES"
DEFAULT_CONFIRM_BYTES = 2_000_000_000


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m corpus.mix",
                                description="Resolve a mix manifest to its deterministic plan (building missing "
                                            "inputs) and print target vs realized shares; docs/mixing.md.")
    p.add_argument("manifest", help="mix manifest (TOML), e.g. manifests/demo.toml")
    p.add_argument("--data-dir", default=None, help="data root (default: $HRM_DATA_DIR or ./data)")
    p.add_argument("--export-jsonl", metavar="DIR", help="also write DIR/train.jsonl, val.jsonl, meta.json "
                                                         "in the blueprint trainer's format")
    p.add_argument("--export-limit", type=int, metavar="N", help="export only the first N positions of each split")
    p.add_argument("--yes", action="store_true", help="export even past the size that asks for confirmation "
                   f"(${CONFIRM_ENV}, default {DEFAULT_CONFIRM_BYTES / 1e9:.0f} GB)")
    p.add_argument("--force", action="store_true", help="recompute and rewrite the plan even if registered")
    p.add_argument("--no-build", action="store_true", help="fail instead of training/building missing inputs")
    p.add_argument("--check", action="store_true", help="only validate the manifest file (no catalog access)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--from", dest="inputs", action="append", default=[], metavar="SOURCE=PATH[,PATH]",
                   help="local input for a source's build (the hub may not be reachable); repeatable")
    from corpus.mixing.overrides import DATA_KEYS

    for key in DATA_KEYS:
        p.add_argument(f"--data.{key}", dest=f"data_{key}", type=int, metavar="N",
                       help=f"override [data].{key} (a new value gives a new plan id)")
    return p


def _overrides(args):
    from corpus.mixing.overrides import DATA_KEYS, DataOverrides

    data = DataOverrides()
    for key in DATA_KEYS:
        if getattr(args, f"data_{key}") is not None:
            data.set_value(key, getattr(args, f"data_{key}"))
    for spec in args.inputs:
        data.add_input(spec)
    return data


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from corpus.cli import run_cli

    return run_cli(lambda: _run(args))


def _run(args) -> int:
    from corpus.mixing.overrides import load_overridden

    manifest = load_overridden(args.manifest, _overrides(args))
    if args.check:
        print(f"{manifest.path}: ok ({len(manifest.data.sources)} sources, sha256 {manifest.sha256[:12]}…)")
        return 0
    from corpus.mixing.plan import make_plan
    from corpus.paths import data_root

    root = data_root(args.data_dir)
    log = (lambda m: print(m, file=sys.stderr)) if args.json else print
    import contextlib

    # with --json, stdout is the JSON document alone: an in-process build's summary goes to stderr
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = make_plan(manifest, root, force=args.force, build_missing=not args.no_build, log=log)
    report = _report(result)
    if args.export_jsonl:
        meta = _export(root, result.id, args, log)
        report["export"] = {"dir": args.export_jsonl, "train": meta["train_samples"], "val": meta["val_samples"]}
    if args.json:
        import json

        print(json.dumps(report, indent=1))
    else:
        _print(report)
    return 0


def _export(root, plan_id: str, args, log) -> dict:
    """The size first; past the threshold, ``--export-limit`` or ``--yes`` (or a yes at a terminal)."""
    import os

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from corpus.errors import UserError
    from corpus.mixing import open_plan
    from corpus.mixing.export import estimate, export_jsonl

    if args.export_limit is not None and args.export_limit < 1:
        raise UserError(f"--export-limit must be at least 1, got {args.export_limit}")
    plan = open_plan(root, plan_id)
    size = estimate(plan, args.export_limit)
    what = (f"export of plan {plan_id}: {size['train']:,} train + {size['val']:,} val lines, "
            f"{size['tokens']:,} tokens, about {_human(size['bytes'])} of JSONL in {args.export_jsonl}")
    log(what)
    threshold = float(os.environ.get(CONFIRM_ENV, DEFAULT_CONFIRM_BYTES))
    if size["bytes"] > threshold and not args.yes:
        if sys.stdin.isatty() and not args.json:
            if input(f"write about {_human(size['bytes'])}? [y/N] ").strip().lower() not in ("y", "yes"):
                raise UserError("export cancelled (pass --export-limit N to write fewer lines)")
        else:
            raise UserError(f"the export would write about {_human(size['bytes'])} (over {_human(threshold)}): "
                            "pass --export-limit N for the first N lines of each split, or --yes to write it all")
    columns = (TextColumn("export"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=args.json or not sys.stderr.isatty()) as bar:
        task = bar.add_task("export", total=size["lines"])
        return export_jsonl(plan, args.export_jsonl, args.export_limit, progress=lambda n: bar.advance(task, n))


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _report(result) -> dict:
    comps = result.resolved.components
    out = {"plan": result.id, "dir": str(result.dir), "created": result.created,
           "seconds": round(result.seconds, 3), "sources": []}
    for split in ("train", "val"):
        out[f"{split}_samples"] = sum(s.draws for s in result.stats[split])
    for c in comps:
        tr, va = result.stats["train"][c.index], result.stats["val"][c.index]
        out["sources"].append({
            "name": c.name, "version": c.version_id, "weight": c.weight,
            "train_share": tr.draws / max(1, out["train_samples"]), "train_draws": tr.draws,
            "train_rows": tr.rows, "epochs": tr.epochs,
            "val_share": va.draws / max(1, out["val_samples"]), "val_draws": va.draws, "val_rows": va.rows,
            "val_epochs": va.epochs, "tier_draws": {str(k): v for k, v in sorted(tr.tier_draws.items())},
            "overlong": tr.overlong, "skipped_rows": tr.skipped_rows, "cut_positions": tr.cut_draws,
            "val_skipped_rows": va.skipped_rows, "val_cut_positions": va.cut_draws,
            "target_tokens": tr.target_tokens, "skipped_target_tokens": tr.skipped_target_tokens,
            "cut_target_tokens": tr.cut_target_tokens,
            "chosen": c.chosen, "input_fingerprint": c.fingerprint,
        })
    out["max_seq_len"] = result.resolved.manifest.data.max_seq_len
    out["weight_by"] = result.resolved.manifest.data.weight_by
    return out


def used_lines(sources) -> list[str]:
    """One line per source: the version used, how it was chosen and its inputs' fingerprint
    (``sources``: dicts with name or source, version, chosen, input_fingerprint; shared with the
    trainer's header)."""
    from corpus.mixing.resolve import CHOSEN

    lines = []
    for s in sources:
        how = CHOSEN.get(s.get("chosen") or "", s.get("chosen") or "unrecorded")
        lines.append(f"{s.get('name') or s['source']}: {s['version']} ({how}, "
                     f"inputs {(s.get('input_fingerprint') or '?')[:12]})")
    return lines


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False, width=max(150, Console().width))
    state = "planned" if report["created"] else "already planned"
    table = Table(title=f"plan {report['plan']} ({state}, {report['seconds']:.1f} s)", show_edge=False)
    for col in ("source", "version", "target", "train share", "draws", "rows", "epochs", "val share",
                "val epochs", "overlong", "skipped rows", "cut positions", "tiers drawn (train)"):
        table.add_column(col, justify="left" if col in ("source", "version", "overlong", "tiers drawn (train)")
                         else "right")
    for s in report["sources"]:
        total = max(1, s["train_draws"])
        tiers = " ".join(f"t{t}:{n / total:.0%}" for t, n in s["tier_draws"].items())
        table.add_row(s["name"], s["version"], f"{s['weight']:.4f}", f"{s['train_share']:.4f}",
                      f"{s['train_draws']:,}", f"{s['train_rows']:,}", f"{s['epochs']:.2f}",
                      f"{s['val_share']:.4f}", f"{s['val_epochs']:.2f}", s["overlong"],
                      f"{s['skipped_rows']:,}", f"{s['cut_positions']:,}", tiers)
    console.print(table)
    for line in used_lines(report["sources"]):
        console.print(line, soft_wrap=True)
    if report["weight_by"] != "samples":
        console.print(f"weights are shares of {report['weight_by']} (token share: SELECT * FROM mix_share)")
    console.print(f"{report['train_samples']:,} train + {report['val_samples']:,} val positions → {report['dir']}")
    console.print(f"rows longer than max_seq_len {report['max_seq_len']} (train): " + "; ".join(
        f"{s['name']} {s['overlong']}: {s['skipped_rows']:,} rows skipped, {s['cut_positions']:,} positions cut, "
        f"{s['cut_target_tokens']:,} of {s['target_tokens']:,} target tokens cut, "
        f"{s['skipped_target_tokens']:,} in skipped rows"
        for s in report["sources"]) + " (per split: SELECT * FROM mix_overlong)", soft_wrap=True)
    if "export" in report:
        console.print(f"exported JSONL to {report['export']['dir']}")


if __name__ == "__main__":
    sys.exit(main())
