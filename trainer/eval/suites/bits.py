"""Bits: the HRM test bed (corpus/synthetic/bits.py), exact match per question and per length.

Items are held-out bit strings (``corpus.synthetic.bits.holdout_items``: by construction never a
training string of any build), each asked every question the run trained on (its versions'
``--questions``, else all five), so the questions are paired on the same strings. Tiers: those
the run's ``synthetic:bits`` version was built with, else 0-2 (4-14 bits).
``--limit N``: N strings spread over the tiers (default 60 per tier), times 5 questions.
A string that is nevertheless a training string (read from the catalog) would be dropped and
counted in ``dropped_seen``; ``overlap_checked`` says whether the catalog could be read.

Metrics: ``accuracy`` (all items), ``<question>/accuracy``, ``<question>/tier<k>/accuracy``,
``<question>/len<n>/accuracy`` (each with ``/n``), ``<question>/chance`` (the best guess's exact
match given only the length, under uniform bits: the above-chance control), and for a model with
an HRM ``gate/<question>``: the mean gate (``sigmoid(gate head) x schedule``) over that question's
prompts, which is what the decoder's memory is scaled by.
"""

from __future__ import annotations

import math
import re

from trainer.eval.datasets import DataSources, EvalItem
from trainer.eval.suites.base import (GenerateFn, Options, SuiteResult, Timer, check_lengths, grouped_accuracy,
                                      mean, skipped)

NAME = "bits"
TASK = "bits"
HOLDOUT_SEED = 7_000_003
DEFAULT_PER_TIER = 60
DEFAULT_TIERS = (0, 1, 2)
MAX_NEW_TOKENS = 48  # the longest answer (running parity of 20 bits) is 20 digits
_BITS = re.compile(r"Bits: ([01](?: [01])*)\.")


def chance(question: str, length: int) -> float:
    """Exact match of the best answer that knows only the length, for uniformly random bits."""
    weights = [math.comb(length, k) / 2 ** length for k in range(length + 1)]
    if question in ("count", "binary"):
        return max(weights)
    if question == "parity":
        return max(sum(weights[0::2]), sum(weights[1::2]))
    if question == "mod3":
        return max(sum(weights[r::3]) for r in range(3))
    if question == "prefix_parity":
        return 0.5 ** length
    raise ValueError(f"unknown bits question {question!r}")


def training_strings(sources: DataSources) -> tuple[set[str] | None, str]:
    """Bit strings of the run's training versions of ``synthetic:bits`` (None: not readable)."""
    from trainer.eval.suites import arith

    training = arith.training_of(TASK, sources)
    if training.prompts is None:
        return None, training.why_unknown
    return {m.group(1).replace(" ", "") for p in training.prompts if (m := _BITS.search(p))}, ""


def trained_questions(versions: list[str], sources: DataSources) -> tuple[str, ...]:
    """The questions the training versions asked (their ``--questions``), else all of them."""
    from corpus.synthetic.bits import QUESTIONS
    from trainer.eval import catalog_data

    asked: set[str] = set()
    for vid in versions:
        options = catalog_data.version_config(sources.data_root, vid).get("options") or {}
        asked |= set(options.get("questions") or QUESTIONS)
    return tuple(q for q in QUESTIONS if q in asked) or QUESTIONS


def build_items(sources: DataSources, options: Options) -> tuple[list[EvalItem], dict, list[str]]:
    from corpus.synthetic.bits import holdout_items
    from trainer.eval.suites import arith

    training = arith.training_of(TASK, sources)
    questions = trained_questions(training.versions, sources)
    tiers = training.tiers or DEFAULT_TIERS
    seed = HOLDOUT_SEED if options.arith_seed is None else int(options.arith_seed)
    if seed in training.seeds:
        raise ValueError(f"holdout seed {seed} is a build seed of synthetic:bits; pass another --arith-seed")
    per_tier = max(1, math.ceil(options.limit / len(tiers))) if options.limit else DEFAULT_PER_TIER
    seen, why = training_strings(sources)
    items, dropped = [], 0
    for it in holdout_items(tuple(tiers), per_tier, seed, questions):
        if seen is not None and it.meta["bits"] in seen:
            dropped += 1
            continue
        items.append(EvalItem(id=f"synthetic:bits:{it.native_id}", prompt=it.prompt, reference=it.target,
                              tier=it.tier, group=it.meta["question"], meta=dict(it.meta)))
    notes = [] if seen is not None else [f"overlap with training not checked ({why}); held out by construction"]
    counts = {"seed": seed, "dropped_seen": dropped, "overlap_checked": int(seen is not None)}
    return items, counts, notes


def evaluate(items: list[EvalItem], generate_fn: GenerateFn, probe_fn=None) -> SuiteResult:
    """Exact match of each generation (``Bits.check``), grouped by question, tier and length;
    ``probe_fn(prompts) -> [{"gate": g, ...}]`` adds the gate per question."""
    from corpus.synthetic import TASKS

    prompts = [it.prompt for it in items]
    generations = generate_fn(prompts)
    check_lengths(NAME, prompts, generations)
    gates = [p["gate"] for p in probe_fn(prompts)] if probe_fn is not None else [None] * len(items)
    check_lengths(NAME, prompts, gates)
    records = [{"id": it.id, "question": it.group, "tier": it.tier, "length": len(it.meta["bits"]),
                "generation": text, "answer": it.reference, "correct": TASKS[TASK].check(it.meta, text),
                "chance": chance(it.group, len(it.meta["bits"])), "gate": gate}
               for it, text, gate in zip(items, generations, gates)]
    metrics: dict[str, float | int] = {"accuracy": mean(r["correct"] for r in records), "n": len(records)}
    metrics.update(grouped_accuracy(records, lambda r: r["question"]))
    metrics.update(grouped_accuracy(records, lambda r: f"{r['question']}/tier{r['tier']}"))
    metrics.update(grouped_accuracy(records, lambda r: f"{r['question']}/len{r['length']}"))
    for question in dict.fromkeys(r["question"] for r in records):
        mine = [r for r in records if r["question"] == question]
        metrics[f"{question}/chance"] = mean(r["chance"] for r in mine)
        if probe_fn is not None:
            metrics[f"gate/{question}"] = mean(r["gate"] for r in mine)
    return SuiteResult(NAME, metrics=metrics, records=records)


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    from trainer.eval.generation import text_generator
    from trainer.eval.suites.halting import model_probe

    try:
        items, counts, notes = build_items(sources, options)
    except ValueError as exc:
        return skipped(NAME, str(exc))
    if not items:
        return skipped(NAME, "no held-out bit strings left after dropping training strings")
    generate_fn = text_generator(ev, options.max_new_tokens or MAX_NEW_TOKENS, batch_size=options.batch_size,
                                 progress=options.tick("bits generate"))
    probe_fn = model_probe(ev, options.batch_size) if ev.model.cfg.hrm_enabled else None
    with Timer() as t:
        result = evaluate(items, generate_fn, probe_fn)
    result.metrics.update(counts)
    result.notes += notes
    result.data = f"corpus.synthetic.bits held-out strings, seed {counts['seed']}"
    result.seconds = t.seconds
    return result
