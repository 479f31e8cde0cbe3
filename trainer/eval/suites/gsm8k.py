"""GSM8K: greedy generation, scored two ways under names no one can mistake for each other.

* ``lenient_accuracy``: ours (trainer/eval/answers.py): the number after the last ``####``, else
  the last number; ``$``, units, ``18.00``, fractions accepted; the whole generation is read.
  Per tier (the gsm8k source's rationale-steps rule): ``tier<k>/lenient_accuracy``.
* ``lm_eval_strict_match`` and ``lm_eval_flexible_extract``: lm-evaluation-harness's
  ``exact_match,strict-match`` and ``exact_match,flexible-extract`` (trainer/eval/gsm8k_harness.py):
  the generation cut at "Question:", the first ``#### N``, or the last number, exact string match.
  Only these can stand beside published lm-eval GSM8K numbers (same scoring; the prompt is ours).

Also ``answered`` (share of generations with any number) and ``n``.
"""

from __future__ import annotations

from trainer.eval.datasets import DataSources, EvalItem
from trainer.eval.suites.base import (GenerateFn, Options, SuiteResult, check_lengths, grouped_accuracy,
                                      mean, run_generative)

NAME = "gsm8k"
MAX_NEW_TOKENS = 256


def evaluate(items: list[EvalItem], generate_fn: GenerateFn) -> SuiteResult:
    from trainer.eval.answers import extract_final_number, format_number, gsm8k_correct
    from trainer.eval.gsm8k_harness import extract_flexible, extract_strict, flexible_extract, strict_match

    prompts = [it.prompt for it in items]
    generations = generate_fn(prompts)
    check_lengths(NAME, prompts, generations)
    records = []
    for it, text in zip(items, generations):
        predicted = extract_final_number(text)
        records.append({"id": it.id, "tier": it.tier, "generation": text,
                        "predicted": None if predicted is None else format_number(predicted),
                        "answer": format_number(extract_final_number(it.reference)),
                        "correct": gsm8k_correct(text, it.reference),
                        "lm_eval_strict": extract_strict(text), "lm_eval_flexible": extract_flexible(text),
                        "lm_eval_strict_correct": strict_match(text, it.reference),
                        "lm_eval_flexible_correct": flexible_extract(text, it.reference)})
    metrics = {"lenient_accuracy": mean(r["correct"] for r in records),
               "lm_eval_strict_match": mean(r["lm_eval_strict_correct"] for r in records),
               "lm_eval_flexible_extract": mean(r["lm_eval_flexible_correct"] for r in records),
               "n": len(records), "answered": mean(r["predicted"] is not None for r in records)}
    tiers = grouped_accuracy(records, lambda r: f"tier{r['tier']}")
    metrics.update({k.replace("/accuracy", "/lenient_accuracy"): v for k, v in tiers.items()})
    return SuiteResult(NAME, metrics=metrics, records=records)


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    return run_generative(NAME, "gsm8k", evaluate, MAX_NEW_TOKENS, ev, sources, options)
