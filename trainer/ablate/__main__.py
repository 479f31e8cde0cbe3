"""``python -m trainer.ablate SPEC [--jobs N] [--data_dir DIR] [--report-only [--partial]]``.

Trains every unfinished (arm, seed) run, evaluates every run on the same items, and writes
``<out>/ablation.{md,json,png}`` (docs/ablations.md). Rerunning reuses finished runs and cached
evaluations, so an interrupted ablation continues where it stopped.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time


def ablate(args: argparse.Namespace) -> int:
    from corpus.errors import UserError
    from corpus.paths import data_root
    from trainer.ablate.evaluate import common_arith_items, evaluate_run, plan_id_of
    from trainer.ablate.report import build_report, markdown, write_report
    from trainer.ablate.runs import plan_jobs, train_all
    from trainer.ablate.spec import load_spec

    started = time.perf_counter()
    spec = load_spec(args.spec)
    jobs = plan_jobs(spec)
    say = (lambda m: None) if args.quiet else (lambda m: print(m, flush=True))
    say(f"ablation {spec.name}: {len(spec.arms)} arms x {len(spec.seeds)} seeds = {len(jobs)} runs under {spec.runs_dir}")
    if args.report_only:
        missing = [j.name for j in jobs if not j.finished()]
        if missing and not args.partial:
            raise UserError(f"--report-only: runs not finished: {', '.join(missing)} (--partial: report the "
                            f"seeds every arm has finished)")
        if missing:
            done = [s for s in spec.seeds if all(j.finished() for j in jobs if j.seed == s)]
            if not done:
                raise UserError(f"--partial: no seed is finished for every arm (unfinished: {', '.join(missing)})")
            say(f"--partial: reporting seeds {done} of {spec.seeds} (unfinished: {', '.join(missing)})")
            spec.seeds = done
            jobs = [j for j in jobs if j.seed in done]
    else:
        train_all(jobs, args.data_dir, parallel=args.jobs, say=say, threads=args.threads)
    root = data_root(args.data_dir)
    notes: list[str] = []
    items = None
    if "arith" in spec.evaluation.suites:
        items, notes = common_arith_items(spec, [plan_id_of(j) for j in jobs], root)
    if len({j.data_key for j in jobs}) > 1:
        notes.append("final_val_loss and final_train_loss are measured on each arm's own plan (val split, training "
                     "batches): arms with other [data] are compared on the common items only")
    evals = {(j.arm, j.seed): evaluate_run(j, spec, items, args.data_dir, say=say) for j in jobs}
    command = "python -m trainer.ablate " + " ".join(shlex.quote(a) for a in args.argv)
    rep = build_report(spec, evals, notes, command)
    paths = write_report(rep, spec.out_dir)
    print(markdown(rep))
    say(f"report: {paths['markdown']}  plot: {paths['plot']}  ({time.perf_counter() - started:.0f} s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    from corpus.cli import run_cli

    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m trainer.ablate", description=__doc__.split("\n\n")[1])
    p.add_argument("spec", help="ablation spec TOML (specs/ablation_hrm.toml)")
    p.add_argument("--jobs", type=int, default=1, help="runs trained at a time (default 1)")
    p.add_argument("--threads", type=int, default=None,
                   help="intra-op threads per training run (default: usable cores // --jobs, at most $OMP_NUM_THREADS)")
    p.add_argument("--data_dir", "--data-dir", default=None, help="data root (default $HRM_DATA_DIR or ./data)")
    p.add_argument("--report-only", action="store_true", help="train nothing; fail if a run is unfinished")
    p.add_argument("--partial", action="store_true", help="with --report-only: use the seeds every arm has finished")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    if args.jobs < 1:
        p.error("--jobs must be >= 1")
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1")
    if args.partial and not args.report_only:
        p.error("--partial goes with --report-only")
    args.argv = argv
    return run_cli(lambda: ablate(args))


if __name__ == "__main__":
    sys.exit(main())
