"""``python -m trainer.plot RUN``: PNG plots of a run's ``metrics.jsonl``.

Writes ``RUN/plots/{loss,val_loss,lr,gate,halt}.png`` (matplotlib, Agg backend, no display).
The trainer calls :func:`plot_run` at every validation too.
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
        ax.set_title(f"{run_dir.name}: {title}")
        ax.set_xlabel("step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(loc="best", fontsize=8)
        fig.tight_layout()
        path = out_dir / f"{name}.png"
        tmp = path.with_name(f".{path.stem}.tmp.png")
        fig.savefig(tmp)
        plt.close(fig)
        tmp.replace(path)
        return path

    paths = [
        figure("loss", "training loss", [("loss", train, "-"), ("lm_loss", train, "-"),
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.plot", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run directory (runs/<name>) or run name")
    parser.add_argument("--runs_dir", "--runs-dir", default="runs")
    args = parser.parse_args(argv)

    from corpus.cli import run_cli

    def body() -> int:
        run_dir = Path(args.run)
        if not run_dir.is_dir():
            run_dir = Path(args.runs_dir) / args.run
        if not run_dir.is_dir():
            raise UserError(f"no run directory {args.run} (nor {run_dir})")
        for path in plot_run(run_dir):
            print(path)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
