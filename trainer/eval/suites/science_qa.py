"""ScienceQA: the choice letter parsed from the generation (accuracy), and BLEU / ROUGE-L of the
generated rationale against the reference rationale.

The corpus renders a problem's target as ``lecture + solution + "The answer is (X)."``; the
rationale of a text is what precedes its last answer statement ("The answer is", "Answer:"), so a
reference target scores BLEU = ROUGE-L = 100 against itself. Problems whose reference has no
rationale (no lecture and no solution) count for accuracy only. Images are not read (text model).
Metrics: ``accuracy``, ``n``, ``bleu``, ``rouge_l``, ``n_rationale``, ``tier<k>/accuracy``.
"""

from __future__ import annotations

import re

from trainer.eval.datasets import DataSources, EvalItem
from trainer.eval.suites.base import (GenerateFn, Options, SuiteResult, check_lengths, grouped_accuracy,
                                      mean, run_generative)

NAME = "science_qa"  # the corpus source's name ("scienceqa" is accepted as an alias)
MAX_NEW_TOKENS = 256
_STATEMENT = re.compile(r"(?i)\b(?:the\s+)?(?:correct\s+)?answer\s*(?:is\b|:)")


def rationale_of(text: str) -> str:
    """The text before its last answer statement (all of it when there is none)."""
    last = None
    for last in _STATEMENT.finditer(text):
        pass
    return (text[:last.start()] if last else text).strip()


def evaluate(items: list[EvalItem], generate_fn: GenerateFn) -> SuiteResult:
    from trainer.eval.answers import choice_letter, parse_choice
    from trainer.eval.text_metrics import bleu, choice_accuracy, rouge_l

    prompts = [it.prompt for it in items]
    generations = generate_fn(prompts)
    check_lengths(NAME, prompts, generations)
    records = []
    for it, text in zip(items, generations):
        choices = list(it.meta["choices"])
        picked = parse_choice(text, choices=choices)
        records.append({"id": it.id, "tier": it.tier, "generation": text, "answer": choice_letter(it.meta["answer_index"]),
                        "picked": picked, "predicted": None if picked is None else choice_letter(picked),
                        "correct": picked == it.meta["answer_index"],
                        "rationale": rationale_of(text), "reference_rationale": rationale_of(it.reference)})
    metrics: dict[str, float | int] = {
        "accuracy": choice_accuracy([r["picked"] for r in records], [it.meta["answer_index"] for it in items]),
        "n": len(records), "parsed": mean(r["predicted"] is not None for r in records)}
    pairs = [(r["rationale"], r["reference_rationale"]) for r in records if r["reference_rationale"]]
    if pairs:
        hyps, refs = zip(*pairs)
        metrics.update({"bleu": bleu(hyps, refs), "rouge_l": rouge_l(hyps, refs), "n_rationale": len(pairs)})
    metrics.update(grouped_accuracy(records, lambda r: f"tier{r['tier']}"))
    return SuiteResult(NAME, metrics=metrics, records=records)


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    return run_generative(NAME, "science_qa", evaluate, MAX_NEW_TOKENS, ev, sources, options)
