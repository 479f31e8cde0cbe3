"""The ablation's results: tables with intervals, per-tier accuracy, costs, one overlay plot.

    <out>/ablation.json   every estimate (arm means, differences from the base arm), costs, items
    <out>/ablation.md     the same as markdown tables (what the command prints)
    <out>/ablation.png    the arms' loss, validation-loss, dev-accuracy and gate-μ curves overlaid

Intervals: :mod:`trainer.ablate.stats` (95%, seeds and items combined; differences paired).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from corpus.atomic import write_bytes_atomic
from corpus.errors import UserError
from trainer.ablate.spec import Spec
from trainer.ablate.stats import Estimate, difference, estimate

RUN_METRICS = ("final_val_loss", "final_train_loss")  # one value per run, from metrics.jsonl
_TIER = re.compile(r"/tier\d+/")


def item_matrices(spec: Spec, evals: dict[tuple[str, int], dict]) -> dict[str, dict[str, np.ndarray]]:
    """metric -> arm -> (seeds x items) matrix, items in the base arm's order. Metrics:
    ``<suite>/<value>`` over all items, ``<suite>/<group>/<value>`` and ``<suite>/<group>/tier<k>/<value>``."""
    runs = {arm: [(f"{arm}-s{s}", evals[(arm, s)]["suites"]) for s in spec.seeds] for arm in (a.name for a in spec.arms)}
    return suite_matrices(evals[(spec.base, spec.seeds[0])]["suites"], runs,
                          f"scored other items than {spec.base}-s{spec.seeds[0]}")


def suite_matrices(ref: dict[str, dict], runs: dict[str, list[tuple[str, dict]]],
                   refusal: str) -> dict[str, dict[str, np.ndarray]]:
    """metric -> key -> (seeds x items) matrix for every suite of ``ref`` (suite -> {items}) with
    items: the runs listed under each key, as ``(run name, suites)``, each in ref's item order.
    A run that scored other items is refused with ``"<run>: suite <suite> <refusal>"``."""
    out: dict[str, dict[str, np.ndarray]] = {}
    for suite, ref_suite in ref.items():
        items = ref_suite["items"]
        if not items:
            continue
        ids = [it["id"] for it in items]
        fields = list(items[0]["values"])
        groups: dict[str, list[int]] = {"": list(range(len(ids)))}
        for j, it in enumerate(items):
            if it["group"]:
                groups.setdefault(f"{it['group']}/", []).append(j)
                if it["tier"] is not None:
                    groups.setdefault(f"{it['group']}/tier{it['tier']}/", []).append(j)
        for key, seeds in runs.items():
            cube = []
            for name, suites in seeds:
                mine = suites[suite]["items"]
                if [it["id"] for it in mine] != ids:
                    raise UserError(f"{name}: suite {suite} {refusal}")
                cube.append([[it["values"][f] for f in fields] for it in mine])
            full = np.array(cube)  # seeds x items x fields
            for k, name in enumerate(fields):
                for prefix, cols in groups.items():
                    out.setdefault(f"{suite}/{prefix}{name}", {})[key] = full[:, cols, k]
    return out


def run_vectors(spec: Spec, evals: dict[tuple[str, int], dict]) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for metric in RUN_METRICS:
        for arm in (a.name for a in spec.arms):
            values = [evals[(arm, s)]["training"][metric] for s in spec.seeds]
            if all(v is not None for v in values):
                out.setdefault(metric, {})[arm] = np.array(values, dtype=float)
    return out


def build_report(spec: Spec, evals: dict[tuple[str, int], dict], notes: list[str], command: str) -> dict[str, Any]:
    arms = [a.name for a in spec.arms]
    metrics: dict[str, Any] = {}
    for metric, by_arm in {**item_matrices(spec, evals), **run_vectors(spec, evals)}.items():
        base = by_arm[spec.base]
        metrics[metric] = {arm: {"estimate": estimate(x).as_dict(),
                                 "vs_base": None if arm == spec.base else difference(x, base).as_dict()}
                           for arm, x in by_arm.items()}
    costs = {}
    for arm in arms:
        runs = [evals[(arm, s)] for s in spec.seeds]
        c = runs[0]["cost"]
        costs[arm] = {"params": c["params"], "hrm_params": c["hrm_params"], "flops_per_step": c["flops_per_step"],
                      "train_flops": float(np.mean([r["cost"]["train_flops"] for r in runs])),
                      "tokens": float(np.mean([r["training"]["tokens"] for r in runs])),
                      "samples": float(np.mean([r["training"]["samples"] for r in runs])),
                      "steps": runs[0]["step"],
                      "train_seconds": float(np.mean([r["training"]["elapsed_s"] or 0 for r in runs])),
                      "final_gate_mean": float(np.mean([_last(r, "gate_mean") for r in runs])),
                      "final_halt_sum": float(np.mean([_last(r, "halt_sum_mean") for r in runs]))}
    gate = {arm: _gate_phases([evals[(arm, s)] for s in spec.seeds]) for arm in arms}
    carried = memory_carried(spec, evals)
    return {"spec": str(spec.path), "spec_sha": spec.sha, "gate": gate, "command": command, "name": spec.name,
            "gate_by_group": {arm: _suite_means([evals[(arm, s)] for s in spec.seeds], "gate/") for arm in arms},
            "chance": _suite_means([evals[(spec.base, spec.seeds[0])]], "", suffix="/chance"),
            "base": spec.base, "arms": arms, "descriptions": {a.name: a.description for a in spec.arms},
            "seeds": spec.seeds, "notes": notes, "metrics": metrics, "costs": costs, "memory_left_out": carried,
            "curves": {f"{arm}-s{s}": evals[(arm, s)]["training"]["curves"] for arm in arms for s in spec.seeds}}


def memory_carried(spec: Spec, evals: dict[tuple[str, int], dict]) -> dict[str, dict[str, Any]]:
    """arm -> metric -> {left_out, carried}: each HRM arm scored again with the gate shut (the same
    weights, the plain decoder inside them), and full − left out paired over seeds and items: how
    much of the arm's score its HRM memory carries. Arms (or runs) without the score are left out."""
    out: dict[str, dict[str, Any]] = {}
    for arm in (a.name for a in spec.arms):
        runs = [(f"{arm}-s{s}", evals[(arm, s)]) for s in spec.seeds]
        if not all(r.get("memory_left_out") for _, r in runs):
            continue
        matrices = suite_matrices(runs[0][1]["memory_left_out"],
                                  {"full": [(name, r["suites"]) for name, r in runs],
                                   "shut": [(name, r["memory_left_out"]) for name, r in runs]},
                                  "with the memory left out scored other items")
        out[arm] = {metric: {"left_out": estimate(m["shut"]).as_dict(), "carried": difference(m["full"], m["shut"]).as_dict()}
                    for metric, m in matrices.items()}
    return out


PHASES = (0.25, 0.5, 0.75, 1.0)


def _gate_phases(runs: list[dict]) -> dict[str, Any]:
    """Gate μ at a quarter, half, three quarters and the end of training, averaged over seeds."""
    at = []
    for frac in PHASES:
        values = []
        for r in runs:
            rows = r["training"]["curves"]["train"]
            last = rows[-1]["step"]
            values.append(min(rows, key=lambda row: abs(row["step"] - frac * last))["gate_mean"] or 0.0)
        at.append(float(np.mean(values)))
    ends = [max((row.get("gate_max") or 0.0) for row in r["training"]["curves"]["train"][-3:]) for r in runs]
    return {"phases": list(PHASES), "gate_mean": at, "gate_max_end": float(np.mean(ends))}


def _suite_means(runs: list[dict], prefix: str, suffix: str = "") -> dict[str, dict[str, float]]:
    """suite -> {group: mean over runs} of the suite metrics ``<prefix><group><suffix>`` (the bits
    suite's ``gate/<question>`` and ``<question>/chance``); groups a run lacks are left out."""
    out: dict[str, dict[str, float]] = {}
    for suite in runs[0]["suites"]:
        keys = [k for k in runs[0]["suites"][suite]["metrics"] if k.startswith(prefix) and k.endswith(suffix)
                and k.count("/") == 1]
        for key in keys:
            values = [r["suites"][suite]["metrics"].get(key) for r in runs]
            if all(v is not None for v in values):
                group = key[len(prefix):len(key) - len(suffix)]
                out.setdefault(suite, {})[group] = float(np.mean(values))
    return out


def _last(run: dict, key: str, window: int = 3) -> float:
    rows = [r[key] for r in run["training"]["curves"]["train"] if r.get(key) is not None][-window:]
    return float(np.mean(rows)) if rows else 0.0


# -- markdown --------------------------------------------------------------------------------------

def _ci(e: dict, digits: int) -> str:
    if e["seeds"] < 2 and e["items"] < 2:
        return f"{e['mean']:.{digits}f} (1 seed: no interval)"
    return f"{e['mean']:.{digits}f} [{e['lo']:.{digits}f}, {e['hi']:.{digits}f}]"


def _sig(e: dict) -> str:
    if e["seeds"] < 2 and e["items"] < 2:
        return ""
    return "" if e["lo"] <= 0 <= e["hi"] else (" ▲" if e["lo"] > 0 else " ▼")


def question_table(rep: dict[str, Any], suite: str = "bits") -> list[str]:
    """One row per arm: exact match per question with its interval and the difference from the
    base arm, then parameters, training FLOPs and gate μ per question (empty without the suite)."""
    arms, base = rep["arms"], rep["base"]
    pattern = re.compile(rf"^{re.escape(suite)}/([^/]+)/accuracy$")
    questions = [m.group(1) for key in rep["metrics"] if (m := pattern.match(key))]
    if not questions:
        return []
    chance = rep.get("chance", {}).get(suite, {})
    head = " | ".join(f"{q} (chance {chance[q]:.3f})" if q in chance else q for q in questions)
    lines = [f"| arm | {head} | params | train FLOPs | gate μ per question |",
             "|---|" + "---|" * (len(questions) + 3)]
    for arm in arms:
        cells = []
        for q in questions:
            r = rep["metrics"][f"{suite}/{q}/accuracy"][arm]
            cell = _ci(r["estimate"], 3)
            if r["vs_base"] is not None:
                cell += f"<br>Δ {_ci(r['vs_base'], 3)}{_sig(r['vs_base'])}"
            cells.append(cell)
        c = rep["costs"][arm]
        gates = rep.get("gate_by_group", {}).get(arm, {}).get(suite, {})
        gate = " / ".join(f"{q} {gates[q]:.3f}" for q in questions if q in gates) or "—"
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {c['params']:,} | {c['train_flops']:.3g} | {gate} |")
    return lines


def memory_table(rep: dict[str, Any]) -> list[str]:
    """One row per HRM arm: each question's exact match (bits) or each suite's headline scores
    with the memory left out, and what the memory carries (the arm's own score minus that, paired)."""
    carried = rep.get("memory_left_out") or {}
    if not carried:
        return []
    keys = list(dict.fromkeys(m for by_metric in carried.values() for m in by_metric))
    per_question = [m for m in keys if m.startswith("bits/") and m.endswith("/accuracy") and m.count("/") == 2]
    metrics = per_question or [m for m in keys if m.count("/") == 1]
    labels = [m.split("/")[1] if per_question else m for m in metrics]
    lines = ["| arm | " + " | ".join(labels) + " |", "|---|" + "---|" * len(metrics)]
    for arm, by_metric in carried.items():
        cells = []
        for m in metrics:
            r = by_metric.get(m)
            cells.append("—" if r is None else
                         f"{_ci(r['left_out'], 3)}<br>carried {_ci(r['carried'], 3)}{_sig(r['carried'])}")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return lines


def markdown(rep: dict[str, Any]) -> str:
    arms, base = rep["arms"], rep["base"]
    lines = [f"# Ablation `{rep['name']}`", "", f"`{rep['command']}`  (spec `{rep['spec']}`, sha {rep['spec_sha'][:12]})",
             "", f"Base arm: `{base}`. Seeds: {', '.join(map(str, rep['seeds']))}. Intervals: 95%, over seeds and "
             "items (trainer/ablate/stats.py); Δ is arm − base, paired over seeds and items; ▲/▼ = interval excludes 0.",
             ""]
    if len(rep["seeds"]) < 2:
        lines += ["* One seed: item-level intervals hold the item term only; run-level metrics get none.", ""]
    lines += [f"* {n}" for n in rep["notes"]]
    per_question = question_table(rep)
    if per_question:
        lines += ["", "## Exact match per question (bits holdout; Δ = arm − base, paired)", ""] + per_question
    left_out = memory_table(rep)
    if left_out:
        lines += ["", "## The same weights with the memory left out (gate shut; carried = arm − left out, paired)",
                  ""] + left_out
    lines += ["", "## Cost per arm (mean over seeds)", "",
              "| arm | params | HRM params | steps | samples | tokens | train FLOPs | vs base | s/run | gate μ (end) | halt Σ (end) |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    fb = rep["costs"][base]["train_flops"] or 1.0
    for arm in arms:
        c = rep["costs"][arm]
        lines.append(f"| {arm} | {c['params']:,} | {c['hrm_params']:,} | {c['steps']} | {c['samples']:,.0f} | "
                     f"{c['tokens']:,.0f} | {c['train_flops']:.3g} | {c['train_flops'] / fb:.2f}x | {c['train_seconds']:.0f} | "
                     f"{c['final_gate_mean']:.3f} | {c['final_halt_sum']:.2f} |")
    lines += ["", "## HRM gate μ and halt Σ over training (mean over seeds; training log windows)", "",
              "| arm | " + " | ".join(f"{int(f * 100)}%" for f in PHASES) + " | gate max (end) | halt Σ (end) |",
              "|---|" + "---|" * (len(PHASES) + 2)]
    for arm in arms:
        g = rep["gate"][arm]
        lines.append(f"| {arm} | " + " | ".join(f"{v:.4f}" for v in g["gate_mean"]) +
                     f" | {g['gate_max_end']:.3f} | {rep['costs'][arm]['final_halt_sum']:.2f} |")
    by_group = {arm: rep.get("gate_by_group", {}).get(arm, {}) for arm in arms}
    suites = sorted({suite for g in by_group.values() for suite in g})
    for suite in suites:
        groups = list(dict.fromkeys(q for g in by_group.values() for q in g.get(suite, {})))
        lines += ["", f"## Gate μ per question at the end of training ({suite} holdout prompts, mean over seeds)", "",
                  "| arm | " + " | ".join(groups) + " |", "|---|" + "---|" * len(groups)]
        for arm in arms:
            mine = by_group[arm].get(suite, {})
            lines.append(f"| {arm} | " + " | ".join(f"{mine[q]:.4f}" if q in mine else "—" for q in groups) + " |")
    for suite, chances in rep.get("chance", {}).items():
        lines += ["", f"Chance ({suite}: exact match of the best guess that knows only the length): " +
                  ", ".join(f"{q} {v:.3f}" for q, v in chances.items()) + "."]
    headline = [m for m in rep["metrics"] if not _TIER.search(m)]
    lines += ["", "## Metrics", "", "| metric | " + " | ".join(arms) + " |", "|---|" + "---|" * len(arms)]
    for m in headline:
        digits = 4 if ("loss" in m or "nll" in m) else 3
        cells = []
        for arm in arms:
            r = rep["metrics"][m][arm]
            cell = _ci(r["estimate"], digits)
            if r["vs_base"] is not None:
                cell += f"<br>Δ {_ci(r['vs_base'], digits)}{_sig(r['vs_base'])}"
            cells.append(cell)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    tiers = [m for m in rep["metrics"] if _TIER.search(m)]
    if tiers:
        lines += ["", "## Per tier", "", "| metric | n | " + " | ".join(arms) + " |",
                  "|---|---|" + "---|" * len(arms)]
        for m in tiers:
            first = rep["metrics"][m][base]["estimate"]
            cells = []
            for arm in arms:
                r = rep["metrics"][m][arm]
                cells.append(_ci(r["estimate"], 3) + ("" if r["vs_base"] is None else
                                                     f"<br>Δ {_ci(r['vs_base'], 3)}{_sig(r['vs_base'])}"))
            lines.append(f"| {m} | {first['items']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# -- plot ----------------------------------------------------------------------------------------

def plot(rep: dict[str, Any], path: Path) -> Path:
    """One figure, four panels: train loss, validation loss, dev accuracy, gate μ; arm colour, seed lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(11, 7), dpi=100)
    panels = [(axes[0][0], "train", "loss", "training loss"), (axes[0][1], "val", "val_loss", "validation loss"),
              (axes[1][0], "dev", None, "dev accuracy (in-training evals)"), (axes[1][1], "train", "gate_mean", "gate μ")]
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, arm in enumerate(rep["arms"]):
        colour = colours[k % len(colours)]
        for j, seed in enumerate(rep["seeds"]):
            curves = rep["curves"][f"{arm}-s{seed}"]
            for ax, kind, key, _ in panels:
                rows = curves[kind]
                keys = [key] if key else sorted({x for r in rows for x in r if x != "step"})[:1]
                for name in keys:
                    xs = [r["step"] for r in rows if r.get(name) is not None]
                    ys = [r[name] for r in rows if r.get(name) is not None]
                    if xs:
                        ax.plot(xs, ys, color=colour, linewidth=1.0, alpha=0.8,
                                label=(arm if j == 0 else None), marker="o" if kind != "train" else None, markersize=3)
    axes[0][0].set_yscale("log")  # the first steps fall from the vocabulary's entropy
    for ax, kind, key, title in panels:
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.suptitle(f"ablation {rep['name']}: one line per (arm, seed)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(path)
    return path


def write_report(rep: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    out_dir = Path(out_dir)
    paths = {"json": out_dir / "ablation.json", "markdown": out_dir / "ablation.md", "plot": out_dir / "ablation.png"}
    write_bytes_atomic(paths["json"], json.dumps(rep, indent=1).encode())
    write_bytes_atomic(paths["markdown"], markdown(rep).encode())
    plot(rep, paths["plot"])
    return paths
