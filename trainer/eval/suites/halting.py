"""Halting: how the HRM spends its cycles, per difficulty tier ("inspect halting probabilities").

For every prompt of the arith holdout (the same items as the ``arith`` suite) the HRM reads the
prompt as in generation and reports, per sample: halt Σ (sum of the per-cycle halting
probabilities, pulled toward ``halt_target`` in training), the expected number of cycles under
the halting distribution, the distribution itself, and the gate. A model trained without
``use_halting`` has no halting probabilities: it always runs ``h_cycles``; the suite then reports
the gate and that cycle count only.
Metrics per tier ``tier<k>/...`` and overall: ``halt_sum_mean``, ``halt_sum_std``,
``halt_sum_p10/p50/p90``, ``expected_cycles_mean``, ``expected_cycles_std``, ``p_cycle<c>``
(mean halting distribution), ``gate_mean``, ``n``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from trainer.eval.datasets import DataSources, EvalItem
from trainer.eval.suites.base import Options, SuiteResult, Timer, skipped

NAME = "halting"
ProbeFn = Callable[[list[str]], list[dict]]  # per prompt: halt_sum|None, expected_cycles, dist|None, gate


def _stats(rows: list[dict]) -> dict[str, float | int]:
    out: dict[str, float | int] = {"n": len(rows), "gate_mean": float(np.mean([r["gate"] for r in rows]))}
    cycles = np.array([r["expected_cycles"] for r in rows], dtype=np.float64)
    out["expected_cycles_mean"], out["expected_cycles_std"] = float(cycles.mean()), float(cycles.std())
    sums = [r["halt_sum"] for r in rows if r["halt_sum"] is not None]
    if sums:
        s = np.array(sums, dtype=np.float64)
        out.update({"halt_sum_mean": float(s.mean()), "halt_sum_std": float(s.std()),
                    "halt_sum_min": float(s.min()), "halt_sum_max": float(s.max()),
                    "halt_sum_p10": float(np.percentile(s, 10)), "halt_sum_p50": float(np.percentile(s, 50)),
                    "halt_sum_p90": float(np.percentile(s, 90))})
        width = max(len(r["dist"]) for r in rows)
        dist = np.zeros(width)
        for r in rows:
            dist[:len(r["dist"])] += r["dist"]
        for c, p in enumerate(dist / len(rows), start=1):
            out[f"p_cycle{c}"] = float(p)
    return out


def evaluate(items: list[EvalItem], probe_fn: ProbeFn) -> SuiteResult:
    probes = probe_fn([it.prompt for it in items])
    if len(probes) != len(items):
        raise ValueError(f"halting: probe_fn returned {len(probes)} results for {len(items)} prompts")
    records = [{"id": it.id, "task": it.group, "tier": it.tier, **p} for it, p in zip(items, probes)]
    metrics = _stats(records)
    for tier in sorted({r["tier"] for r in records}):
        metrics.update({f"tier{tier}/{k}": v for k, v in _stats([r for r in records if r["tier"] == tier]).items()})
    result = SuiteResult(NAME, metrics=metrics, records=records)
    if all(r["halt_sum"] is None for r in records):
        result.notes.append("model trained without use_halting: no halting probabilities, every prompt runs "
                            "h_cycles cycles")
    return result


def model_probe(ev, batch_size: int = 32, progress=None) -> ProbeFn:
    """The HRM's readout for each prompt (bridge-layer states of ``[bos] + prompt``)."""
    import torch

    from trainer.model.halting import expected_cycles

    model = ev.model

    @torch.no_grad()
    def probe(prompts: list[str]) -> list[dict]:
        ids = [ev.encode_prompt(p) for p in prompts]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out: list[dict] = [{}] * len(ids)
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                width = max(len(ids[i]) for i in chunk)
                batch = torch.full((len(chunk), width), ev.tokenizer.pad_id, dtype=torch.long)
                for r, i in enumerate(chunk):
                    batch[r, :len(ids[i])] = torch.tensor(ids[i])
                lens = torch.tensor([len(ids[i]) for i in chunk], device=ev.device)
                # right padding is invisible: the layers below the bridge are causal and the HRM
                # pools prompt positions only
                h = model.decoder.run(model.decoder.embed(batch.to(ev.device)), 0, model.cfg.bridge_index)
                readout = model.read_hrm(h, lens, ev.gate_scale)
                gate = readout.gate.float().cpu().tolist()
                if readout.halt_probs is not None:
                    probs, dist = readout.halt_probs.double(), readout.halt_dist.double()
                    if probs.dim() == 3:  # per_token: the position that predicts the first answer token
                        rows = torch.arange(len(chunk), device=probs.device)
                        probs, dist = probs[rows, lens - 1], dist[rows, lens - 1]
                    sums = probs.sum(1).cpu().tolist()
                    cycles = expected_cycles(dist).cpu().tolist()
                    dists = dist.cpu().tolist()
                else:
                    sums, dists = [None] * len(chunk), [None] * len(chunk)
                    cycles = [float(model.cfg.h_cycles)] * len(chunk)
                for r, i in enumerate(chunk):
                    out[i] = {"halt_sum": sums[r], "expected_cycles": cycles[r], "dist": dists[r] or [],
                              "gate": gate[r]}
                if progress is not None:
                    progress(min(start + batch_size, len(order)), len(order))
        finally:
            model.train(was_training)
        return out

    return probe


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    from trainer.eval.suites import arith

    if not ev.model.cfg.hrm_enabled:
        return skipped(NAME, "the model has no HRM (hrm_enabled = false)")
    try:
        items, counts, notes = arith.build_items(sources, options)
    except ValueError as exc:
        return skipped(NAME, str(exc))
    with Timer() as t:
        result = evaluate(items, model_probe(ev, options.batch_size, options.tick("halting")))
    result.data = f"the arith holdout's prompts (seed {counts['seed']})"
    result.seconds = t.seconds
    return result
