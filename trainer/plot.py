"""``python -m trainer.plot RUN [RUN ...]``: PNG plots of runs' ``metrics.jsonl``.

One run: ``RUN/plots/{loss,val_loss,lr,gate,halt}.png`` (+ ``dev_<suite>.png``), titled with the
tokens seen and the ETA of the last log line. The trainer calls :func:`plot_run` at validations
too (at most once a minute) and at the end of a run. Several runs (stage A, B, C, or ablation arms): :func:`plot_overlay` draws them on
one set of axes per quantity, one colour per run, in ``--out`` (default ``RUNS_DIR/compare``).
matplotlib with the Agg backend: no display needed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from corpus.errors import UserError


def plot_run(run_dir: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainer.metrics import read_metrics

    run_dir = Path(run_dir)
    records = read_metrics(run_dir / "metrics.jsonl")
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    if not train and not val:
        raise UserError(f"no metrics in {run_dir / 'metrics.jsonl'}")
    out_dir = run_dir / "plots"
    out_dir.mkdir(parents=True, exist_ok=True)
    col = lambda rows, key: ([r["step"] for r in rows if key in r], [r[key] for r in rows if key in r])  # noqa: E731

    entropies = [r["unigram_entropy"] for r in records if r.get("kind") == "event" and r.get("unigram_entropy")]
    progress = _progress_note(train)

    def figure(name: str, title: str, series: list[tuple[str, list, str]], band=None, ylabel="", hline=None):
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
        if hline is not None:  # the unigram entropy: what a context-free model would score
            ax.axhline(hline, color="grey", linestyle=":", linewidth=1, label=f"unigram entropy {hline:.2f}")
        for key, rows, style in series:
            xs, ys = col(rows, key)
            if xs:
                ax.plot(xs, ys, style, label=key, linewidth=1.2, markersize=3)
        if band is not None:
            lo_key, hi_key, rows = band
            xs, lo = col(rows, lo_key)
            _, hi = col(rows, hi_key)
            if xs:
                ax.fill_between(xs, lo, hi, alpha=0.2, label=f"[{lo_key}, {hi_key}]")
        return _finish(fig, ax, out_dir / f"{name}.png", f"{run_dir.name}: {title}", ylabel)

    paths = [
        figure("loss", "training loss" + progress, [("loss", train, "-"), ("lm_loss", train, "-"),
                                          ("val_loss", val, "o-")], ylabel="nats/token",
               hline=entropies[-1] if entropies else None),
        figure("val_loss", "validation loss", [("val_loss", val, "o-")], ylabel="nats/token",
               hline=entropies[-1] if entropies else None),
        figure("lr", "learning rate", [("lr", train, "-")]),
        figure("gate", "gate μ (with [min, max]), the head's own gate and the schedule",
               [("gate_mean", train, "-"), ("gate_raw_mean", train, ":"), ("gate_scale", train, "--")],
               band=("gate_min", "gate_max", train)),
        figure("halt", "halt Σ (with [min, max])", [("halt_sum_mean", train, "-")],
               band=("halt_sum_min", "halt_sum_max", train)),
    ]
    dev = [r for r in records if r.get("kind") == "dev"]  # [eval] dev_suites (trainer/eval/dev.py)
    if dev:
        from trainer.eval.dev import dev_series

        paths += [figure(f"dev_{suite}", f"dev eval: {suite}", [(k, dev, "o-") for k in keys])
                  for suite, keys in dev_series(dev).items()]
    return paths


def _progress_note(train: list[dict]) -> str:
    """`` (1,234,567 tokens seen, ETA 3m05s)`` from the last train record, when it has them."""
    if not train or "tokens" not in train[-1]:
        return ""
    from trainer.metrics import format_eta

    last = train[-1]
    eta = f", ETA {format_eta(last['eta_s'])}" if "eta_s" in last else ""
    return f" ({last['tokens']:,} tokens seen{eta})"


OVERLAYS = (  # file, title, (record kind, field), y label
    ("loss", "training loss", ("train", "loss"), "nats/token"),
    ("lm_loss", "LM loss", ("train", "lm_loss"), "nats/token"),
    ("val_loss", "validation loss", ("val", "val_loss"), "nats/token"),
    ("gate", "gate μ", ("train", "gate_mean"), ""),
    ("halt", "halt Σ", ("train", "halt_sum_mean"), ""),
)


def plot_overlay(run_dirs: list[Path], out_dir: Path) -> list[Path]:
    """Several runs on one set of axes per quantity (and per dev-eval metric), one colour per run."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trainer.metrics import read_metrics

    runs = []
    for run_dir in map(Path, run_dirs):
        records = read_metrics(run_dir / "metrics.jsonl")
        if not records:
            raise UserError(f"no metrics in {run_dir / 'metrics.jsonl'}")
        runs.append((run_dir.name, records))
    names = [n for n, _ in runs]
    if len(set(names)) < len(names):  # runs/a/x and runs/b/x: tell them apart by the parent
        names = [f"{Path(d).parent.name}/{Path(d).name}" for d in run_dirs]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    panels = [(f, t, kind, field, y) for f, t, (kind, field), y in OVERLAYS]
    dev_keys = sorted({k for _, recs in runs for r in recs if r.get("kind") == "dev" for k in r
                       if k.startswith("dev/") and not k.endswith("/seconds") and isinstance(r[k], (int, float))})
    panels += [("dev_" + k[4:].replace("/", "_"), f"dev eval: {k[4:]}", "dev", k, "") for k in dev_keys]
    paths = []
    for name, title, kind, field, ylabel in panels:
        fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
        drawn = 0
        for label, (_, records) in zip(names, runs):
            rows = [r for r in records if r.get("kind") == kind and isinstance(r.get(field), (int, float))]
            if rows:
                ax.plot([r["step"] for r in rows], [r[field] for r in rows], "o-" if kind != "train" else "-",
                        label=label, linewidth=1.2, markersize=3)
                drawn += 1
        if not drawn:
            plt.close(fig)
            continue
        paths.append(_finish(fig, ax, out_dir / f"{name}.png", f"{title}: {len(runs)} runs", ylabel))
    return paths


def _finish(fig, ax, path: Path, title: str, ylabel: str) -> Path:
    """Title, axes, legend; written to a temporary name and renamed (a reader never sees half a PNG)."""
    import matplotlib.pyplot as plt

    ax.set_title(title)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.plot", description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run directories (runs/<name>) or run names; "
                        "several are overlaid on one set of axes")
    parser.add_argument("--runs_dir", "--runs-dir", default="runs")
    parser.add_argument("--out", type=Path, help="with several runs: where the overlays go (default RUNS_DIR/compare)")
    args = parser.parse_args(argv)

    from corpus.cli import run_cli

    def body() -> int:
        run_dirs = []
        for run in args.runs:
            run_dir = Path(run)
            if not run_dir.is_dir():
                run_dir = Path(args.runs_dir) / run
            if not run_dir.is_dir():
                raise UserError(f"no run directory {run} (nor {run_dir})")
            run_dirs.append(run_dir)
        if len(run_dirs) == 1:
            paths = plot_run(run_dirs[0])
        else:
            paths = plot_overlay(run_dirs, args.out or Path(args.runs_dir) / "compare")
        for path in paths:
            print(path)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
