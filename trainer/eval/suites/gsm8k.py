"""GSM8K: greedy generation, the final number (after ``####``, else the last one), exact match.

Metrics: ``accuracy``, ``answered`` (share of generations with any number), ``n``, and per
tier (the gsm8k source's rationale-steps rule) ``tier<k>/accuracy``.
"""

from __future__ import annotations

from trainer.eval.datasets import DataSources, EvalItem
from trainer.eval.suites.base import (GenerateFn, Options, SuiteResult, check_lengths, grouped_accuracy,
                                      mean, run_generative)

NAME = "gsm8k"
MAX_NEW_TOKENS = 256


def evaluate(items: list[EvalItem], generate_fn: GenerateFn) -> SuiteResult:
    from trainer.eval.answers import extract_final_number, format_number, gsm8k_correct

    prompts = [it.prompt for it in items]
    generations = generate_fn(prompts)
    check_lengths(NAME, prompts, generations)
    records = []
    for it, text in zip(items, generations):
        predicted = extract_final_number(text)
        records.append({"id": it.id, "tier": it.tier, "generation": text,
                        "predicted": None if predicted is None else format_number(predicted),
                        "answer": format_number(extract_final_number(it.reference)),
                        "correct": gsm8k_correct(text, it.reference)})
    metrics = {"accuracy": mean(r["correct"] for r in records), "n": len(records),
               "answered": mean(r["predicted"] is not None for r in records)}
    metrics.update(grouped_accuracy(records, lambda r: f"tier{r['tier']}"))
    return SuiteResult(NAME, metrics=metrics, records=records)


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    return run_generative(NAME, "gsm8k", evaluate, MAX_NEW_TOKENS, ev, sources, options)
