"""Evaluate every finished run on the same items, and read its training record.

    common items: the synthetic holdout drawn once for all arms, minus every prompt any arm's plan
                  trained on (arms with different [data] have different plans, so the per-run
                  ``arith`` suite would drop different items); other suites read fixed test sets
    per run:      final.pt (equal training budget for every arm, not the best-val checkpoint)
                  ─► the suites ─► per item {id, group, tier, values: {accuracy}} + metrics
                  ─► with arith: teacher-forced target NLL and token accuracy per item (teacher.py)
                  ─► HRM arms (``memory_left_out``): every suite (and the teacher-forced scores)
                     again with the gate shut, the same weights without the memory (what the HRM
                     carries = full − left out)
                  ─► cached in <run>/ablation/eval-<key>.json (key: checkpoint sha, items, options)
    training:     metrics.jsonl ─► final val loss, tokens and samples seen, gate μ and halt Σ curves
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path
from typing import Any

from corpus.atomic import write_bytes_atomic
from corpus.errors import UserError
from trainer.ablate.runs import RunJob
from trainer.ablate.spec import Spec

FLAGS = ("correct", "passed")  # the per-item verdict field of the suites' records


def plan_id_of(job: RunJob) -> str:
    from trainer.metrics import read_metrics

    for r in read_metrics(job.run_dir / "metrics.jsonl"):
        if r.get("kind") == "event" and r.get("plan_id"):
            return str(r["plan_id"])
    raise UserError(f"{job.run_dir / 'metrics.jsonl'}: no start event with a plan id")


def common_arith_items(spec: Spec, plan_ids: list[str], data_root: Path):
    """Holdout items no arm trained on: one list for every run; returns (items, notes)."""
    from corpus.synthetic import TIERS
    from trainer.eval.datasets import DataSources
    from trainer.eval.suites import arith

    ev = spec.evaluation
    sources = [DataSources(data_root=data_root, plan_id=p) for p in dict.fromkeys(plan_ids)]
    tasks = list(ev.arith_tasks or arith.plan_tasks(sources[0]) or ["arith"])
    seed = arith.HOLDOUT_SEED if ev.arith_seed is None else int(ev.arith_seed)
    items, notes = [], []
    for task in tasks:
        seen: set[str] = set()
        tiers: set[int] = set()
        for src in sources:
            training = arith.training_of(task, src)
            if seed in training.seeds:
                raise UserError(f"evaluation.arith_seed {seed} is a build seed of synthetic:{task}; choose another")
            if training.prompts is None:
                raise UserError(f"synthetic:{task}: cannot read the training prompts ({training.why_unknown})")
            seen |= training.prompts
            tiers |= set(training.tiers or TIERS)
        ordered = tuple(sorted(tiers))
        per_tier = max(1, math.ceil(ev.limit / len(ordered))) if ev.limit else arith.DEFAULT_PER_TIER
        got, dropped, _ = arith.holdout_items(task, ordered, per_tier, seed, seen)
        items += got
        short = [t for t in ordered if sum(1 for it in got if it.tier == t) < per_tier]
        notes.append(f"{task}: {len(got)} items, tiers {list(ordered)}, seed {seed}; {sum(dropped.values())} draws "
                     f"dropped as prompts of some arm's training data" + (f"; tiers {short} ran short" if short else ""))
    return items, notes


# bump when what an evaluation record holds changes, so cached records of the old kind are redone
EVAL_FORMAT = 2  # 2: HRM runs also scored with the memory left out (suites and teacher forcing)


def _key(job: RunJob, suites: list[str], items_sha: str, spec: Spec) -> str:
    meta = json.loads((job.run_dir / "checkpoints" / "final.pt.meta.json").read_text())
    ev = spec.evaluation
    blob = json.dumps([EVAL_FORMAT, meta.get("sha256"), suites, items_sha, ev.limit, ev.max_new_tokens,
                       ev.arith_seed, ev.teacher_forced, ev.device, ev.memory_left_out], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def items_digest(items) -> str:
    return hashlib.sha256("\n".join(f"{it.id}\t{it.prompt}" for it in items).encode()).hexdigest()


def evaluate_run(job: RunJob, spec: Spec, arith_items, data_dir: str | None, say=print) -> dict[str, Any]:
    """Suites, parameters and FLOPs of one finished run (cached beside it)."""
    suites = spec.evaluation.suites
    key = _key(job, suites, items_digest(arith_items or []), spec)
    cache = job.run_dir / "ablation" / f"eval-{key}.json"
    if cache.is_file():  # the training record is re-read: it is cheap and never stale
        return {**json.loads(cache.read_text()), "training": training_record(job)}
    from trainer.ablate.cost import parameter_counts, training_flops
    from trainer.eval.generation import text_generator
    from trainer.eval.load import load_evaluable
    from trainer.eval.runner import run_one, sources_for
    from trainer.eval.suites import arith
    from trainer.eval.suites.base import Options

    ev_opts = spec.evaluation
    ev = load_evaluable(job.run_dir / "checkpoints" / "final.pt", data_dir=data_dir, device=ev_opts.device)
    out: dict[str, Any] = {"run": job.name, "arm": job.arm, "seed": job.seed, "step": ev.step, "suites": {}}
    options = Options(limit=ev_opts.limit, max_new_tokens=ev_opts.max_new_tokens, batch_size=ev_opts.batch_size,
                      workers=1, arith_seed=ev_opts.arith_seed,
                      arith_tasks=tuple(ev_opts.arith_tasks) if ev_opts.arith_tasks else None)

    def score(name: str, on, what: str) -> dict[str, Any]:
        if name == "arith":
            generate = text_generator(on, ev_opts.max_new_tokens or on.max_seq_len, batch_size=ev_opts.batch_size)
            result = arith.evaluate(arith_items, generate)
        else:
            result = run_one(name, on, sources_for(on), options)
        if result.status != "ok":
            raise UserError(f"{job.name}: suite {name}{what} {result.status}: {result.reason}")
        return {"metrics": result.metrics, "items": _item_verdicts(result.records)}

    # the same weights, the gate shut: the plain decoder inside this model
    shut = dataclasses.replace(ev, gate_scale=0.0) if ev_opts.memory_left_out and ev.model.cfg.hrm_enabled else None
    if shut is not None:
        out["memory_left_out"] = {}
    for name in suites:
        out["suites"][name] = score(name, ev, "")
        if shut is not None:
            out["memory_left_out"][name] = score(name, shut, " with the memory left out")
        if name == "arith" and ev_opts.teacher_forced:
            from trainer.ablate.teacher import teacher_forced

            out["suites"]["teacher"] = {"metrics": {}, "items": teacher_forced(ev, arith_items, ev_opts.batch_size)}
            if shut is not None:
                out["memory_left_out"]["teacher"] = {"metrics": {},
                                                     "items": teacher_forced(shut, arith_items, ev_opts.batch_size)}
    training = training_record(job)
    out["training"] = training
    cfg = ev.config.get("train", {})
    out["cost"] = {**parameter_counts(ev.model),
                   **training_flops(ev.model, int(cfg.get("batch_size") or 1), training["mean_row_tokens"],
                                    int(ev.step or 0), int(cfg.get("hrm_gate_warmup_steps") or 0))}
    write_bytes_atomic(cache, json.dumps(out).encode())
    say(f"{job.name}: evaluated ({', '.join(suites)})")
    return out


def _item_verdicts(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for r in records:
        flag = next((f for f in FLAGS if f in r), None)
        if flag is None or "id" not in r:
            continue
        group = r.get("question") or r.get("task") or r.get("dataset") or ""  # bits: per question
        out.append({"id": r["id"], "group": group, "tier": r.get("tier"),
                    "values": {"accuracy": float(bool(r[flag]))}})
    return out


def training_record(job: RunJob) -> dict[str, Any]:
    """Curves and totals from metrics.jsonl (the records after the last start are the run's own)."""
    from trainer.metrics import read_metrics

    records = read_metrics(job.run_dir / "metrics.jsonl")
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    dev = [r for r in records if r.get("kind") == "dev"]
    if not train:
        raise UserError(f"{job.run_dir / 'metrics.jsonl'}: no training records")
    last = train[-1]
    return {
        "tokens": int(last["tokens"]), "samples": int(last["samples"]),
        "mean_row_tokens": last["tokens"] / max(1, last["samples"]),
        "final_val_loss": val[-1]["val_loss"] if val else None,
        "final_train_loss": last["loss"], "elapsed_s": last.get("elapsed_s"),
        "curves": {
            "train": [{k: r.get(k) for k in ("step", "loss", "lm_loss", "gate_mean", "gate_max", "halt_sum_mean")}
                      for r in train],
            "val": [{"step": r["step"], "val_loss": r["val_loss"]} for r in val],
            "dev": [{k: v for k, v in r.items() if k == "step" or (k.endswith("accuracy") and k.count("/") == 2)}
                    for r in dev],
        },
    }
