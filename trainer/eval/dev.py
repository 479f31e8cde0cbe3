"""Small dev evaluations inside training, at every validation (``[eval] dev_suites``, ``dev_limit``).

    Session.validate(step, gate) ─► run_dev_evals(session, step, gate)        (rank 0 only)
        each suite of dev_suites, at most dev_limit items per dataset, on the live model with
        the step's gate ─► metrics.jsonl {"kind": "dev", "step": N, "dev/<suite>/<metric>": ...}
                        ─► plots/dev_<suite>.png (trainer.plot, via dev_series)

The items are the same at every validation (first N items, fixed holdout seed), so the curves
compare like with like. Generation is greedy and nothing draws from the global RNGs, so a run
with dev evals resumes exactly like one without. A suite without data is reported once and
skipped; a failing suite is reported and training goes on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["run_dev_evals", "dev_series", "PLOTTED"]

PLOTTED = ("accuracy", "lenient_accuracy", "lm_eval_strict_match", "pass@1", "ppl", "bits_per_byte", "bleu", "rouge_l", "halt_sum_mean", "expected_cycles_mean")
_reported: set[str] = set()


def _evaluable(s, step: int, gate: float):
    from trainer.eval.load import Evaluable

    return Evaluable(model=s.model, tokenizer=s.data.tokenizer, gate_scale=float(gate), device=s.device, step=step,
                     tag=f"step_{step}", run_dir=Path(s.cfg.run_dir), plan_id=s.plan.id,
                     data_root=Path(s.data.data_root), max_seq_len=int(s.data.max_seq_len))


def run_dev_evals(s, step: int, gate: float) -> dict[str, Any] | None:
    """Run the session's dev suites and log them; returns the metrics record (None when off)."""
    suites = list(getattr(s.cfg.eval, "dev_suites", None) or [])
    if not suites or not s.world.is_main:
        return None
    from trainer.eval.runner import run_one, sources_for
    from trainer.eval.suites.base import Options

    ev = _evaluable(s, step, gate)
    options = Options(limit=int(getattr(s.cfg.eval, "dev_limit", 32) or 32),
                      batch_size=int(s.cfg.eval.eval_batch_size or s.cfg.train.batch_size), workers=1)
    sources = sources_for(ev)
    record: dict[str, Any] = {"kind": "dev", "step": step}
    shown = []
    for name in suites:
        result = run_one(name, ev, sources, options)
        if result.status != "ok":
            key = f"{name}:{result.reason}"
            if key not in _reported:
                _reported.add(key)
                s.say(f"[yellow]dev {name} {result.status}: {result.reason}[/]")
            continue
        record.update({f"dev/{name}/{k}": v for k, v in result.metrics.items()})
        record[f"dev/{name}/seconds"] = result.seconds
        head = next((k for k in PLOTTED if k in result.metrics), None)
        if head:
            shown.append(f"{name} {head} {result.metrics[head]:.4g}")
    if len(record) > 2:
        s.metrics.write(record)
        s.say(f"[bold magenta]dev  {step:>6}[/]  " + "  ".join(shown))
    return record


def dev_series(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Which ``dev/<suite>/...`` keys to plot, per suite: headline metrics, overall and per group."""
    out: dict[str, list[str]] = {}
    for r in records:
        for key in r:
            parts = key.split("/")
            if parts[0] != "dev" or len(parts) not in (3, 4) or parts[-1] not in PLOTTED:
                continue
            keys = out.setdefault(parts[1], [])
            if key not in keys:
                keys.append(key)
    return out
