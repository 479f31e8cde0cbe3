"""``python -m trainer.eval RUN_OR_CHECKPOINT [--suite ...] [--limit N] [--out DIR]``, ``--compare A B``.

Evaluates a run (its best model, else its newest checkpoint) or a checkpoint file on the suites
(ppl, gsm8k, arith, code, science_qa, halting) and writes ``<out>/<tag>.json`` (every metric),
``<tag>.md`` (a table) and ``<tag>/<suite>.jsonl`` (each item's generation and verdict); ``<out>``
defaults to ``runs/<name>/eval/``. ``--compare A B`` prints two evaluations side by side with
deltas, the headline metrics first; A and B are results JSON files or runs/checkpoints (evaluated
first when they have no results yet). It warns loudly when the two were scored on different items,
limits or data (``--strict`` refuses). Every score is in 0-1 (accuracy, pass@1, BLEU, ROUGE-L).
Exit code 1 when a suite failed (not when it was skipped for lack of data).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.eval", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref", nargs="?", metavar="RUN_OR_CHECKPOINT",
                   help="run name, run dir, best-model dir or checkpoint .pt file")
    p.add_argument("--suite", "--suites", default="all",
                   help="comma-separated: ppl,gsm8k,arith,code,science_qa,halting (default: all)")
    p.add_argument("--limit", type=int, help="at most N items per dataset (see docs/evaluation.md)")
    p.add_argument("--out", type=Path, help="output directory (default: <run>/eval)")
    p.add_argument("--compare", nargs=2, metavar=("A", "B"), help="two results JSON files or runs/checkpoints")
    p.add_argument("--strict", action="store_true",
                   help="with --compare: refuse (exit 2) when A and B were scored on different items or limits")
    p.add_argument("--runs-dir", "--runs_dir", default="runs")
    p.add_argument("--data-dir", "--data_dir", help="data root with the catalog (default: $HRM_DATA_DIR or ./data)")
    p.add_argument("--eval-data", type=Path,
                   help="raw benchmark directory (default: $HRM_EVAL_DATA, else ../shared/data beside the repo)")
    p.add_argument("--from", dest="from_", action="append", metavar="NAME=PATH",
                   help="raw files for one dataset: gsm8k, mbpp, humaneval, science_qa, wiki (repeatable)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer.json (default: the run's)")
    p.add_argument("--max-new-tokens", type=int, help="override every suite's generation length")
    p.add_argument("--batch-size", type=int, default=64, help="prompts generated together (default 64)")
    p.add_argument("--workers", type=int, default=2, help="sandboxed programs run at a time (default 2)")
    p.add_argument("--arith-seed", type=int, help="holdout seed (default 7000003; must not be a build seed)")
    p.add_argument("--arith-tasks", help="comma-separated synthetic tasks (default: the plan's, else arith)")
    p.add_argument("--gate-scale", type=float, help="override the HRM gate (default: the schedule at the step)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


class _Bars:
    """Rich progress bars keyed by what is being done (one per suite phase)."""

    def __init__(self, console):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=True)
        self.tasks: dict[str, int] = {}

    def __call__(self, what: str, done: int, total: int) -> None:
        if what not in self.tasks:
            self.tasks[what] = self.progress.add_task(what, total=total)
        self.progress.update(self.tasks[what], completed=done, total=total)

    def __enter__(self):
        self.progress.start()
        return self

    def __exit__(self, *exc):
        self.progress.stop()


def _options(args):
    from trainer.eval.suites.base import Options

    tasks = tuple(t.strip() for t in args.arith_tasks.split(",") if t.strip()) if args.arith_tasks else None
    return Options(limit=args.limit, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                   workers=args.workers, arith_seed=args.arith_seed, arith_tasks=tasks)


def evaluate_ref(ref: str, args, console, out: Path | None = None) -> tuple[dict, Path]:
    """Evaluate one run/checkpoint and write its results; returns (plain results, json path)."""
    from trainer.eval.datasets import DataSources
    from trainer.eval.load import load_evaluable
    from trainer.eval.runner import run_suites, sources_for, write_results
    from trainer.eval.suites import parse_suites

    from corpus.errors import UserError

    try:
        names = parse_suites(args.suite)
    except ValueError as exc:
        raise UserError(f"--suite: {exc}") from None
    ev = load_evaluable(ref, args.runs_dir, args.data_dir, args.tokenizer, args.device, args.gate_scale)
    sources = sources_for(ev, raw_dir=args.eval_data, paths=DataSources.parse_from(args.from_))
    options = _options(args)
    console.print(f"[bold]{ev.tag}[/] of {ev.run_dir or ev.path} (step {ev.step}, gate {ev.gate_scale:.3f}): "
                  f"{', '.join(names)}" + (f", limit {args.limit}" if args.limit else ""), highlight=False)
    if args.quiet:
        doc = run_suites(ev, names, sources, options, say=lambda m: console.print(m, highlight=False))
    else:
        with _Bars(console) as bars:
            options.progress = bars
            doc = run_suites(ev, names, sources, options,
                             say=lambda m: bars.progress.console.print(m, highlight=False))
    out = out or args.out or ((ev.run_dir / "eval") if ev.run_dir else ev.path.parent / "eval")
    paths = write_results(doc, out, ev.tag)
    console.print(f"{doc['seconds']:.1f} s; results: {paths['json']}  table: {paths['markdown']}", highlight=False)
    return json.loads(paths["json"].read_text()), paths["json"]


def _results_for(ref: str, args, console) -> tuple[str, dict]:
    """A results document for ``--compare``: a JSON file, or a run/checkpoint's (evaluated if needed)."""
    from trainer.eval.load import checkpoint_tag, resolve_checkpoint

    path = Path(ref)
    if path.suffix == ".json" and path.is_file():
        return str(path), json.loads(path.read_text())
    weights, run_dir = resolve_checkpoint(ref, args.runs_dir)
    out = (run_dir / "eval") if run_dir else weights.parent / "eval"
    existing = out / f"{checkpoint_tag(weights)}.json"
    if existing.is_file():
        return str(existing), json.loads(existing.read_text())
    doc, json_path = evaluate_ref(ref, args, console, out)
    return str(json_path), doc


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from corpus.cli import run_cli

    def body() -> int:
        from rich.console import Console

        from corpus.errors import UserError

        console = Console(highlight=False)
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        if args.compare:
            if args.ref:
                raise UserError("give RUN_OR_CHECKPOINT or --compare A B, not both")
            from trainer.eval.report import comparability, compare_table, headline_table
            from trainer.eval.runner import flat_metrics

            (name_a, a), (name_b, b) = (_results_for(r, args, console) for r in args.compare)
            problems = comparability(a, b)
            if problems and args.strict:
                raise UserError(f"--compare --strict: {name_a} and {name_b} are not comparable: " + "; ".join(problems))
            for line in problems:
                console.print(f"[bold red]WARNING: not like for like: {line}[/]")
            flat_a, flat_b = flat_metrics(a), flat_metrics(b)
            console.print(headline_table(name_a, name_b, flat_a, flat_b))
            console.print(compare_table(name_a, name_b, flat_a, flat_b))
            if problems:
                console.print(f"[bold red]WARNING: {len(problems)} difference(s) in what was scored (above); "
                              "deltas of those suites do not compare models[/]")
            return 0
        if not args.ref:
            raise UserError("give RUN_OR_CHECKPOINT (or --compare A B); see --help")
        doc, _ = evaluate_ref(args.ref, args, console)
        failed = [n for n, r in doc["suites"].items() if r["status"] == "error"]
        if failed:
            print(f"error: suites failed: {', '.join(failed)} (see the results file)", file=sys.stderr)
            return 1
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
