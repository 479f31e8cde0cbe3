"""Text metrics for generated rationales, and multiple-choice accuracy.

    bleu(hyps, refs)          corpus BLEU, sacrebleu defaults (13a tokenizer, 4-grams, exp
                              smoothing), as a fraction in 0-1 (sacrebleu's score / 100)
    sentence_bleu(hyp, ref)   the same for one pair
    rouge_l(hyps, refs)       mean ROUGE-L F-measure (rouge-score, Porter stemming), in 0-1

Every score the suites report is on one scale, 0-1, like accuracy and pass@1: a results table
never puts a BLEU of 4.8 beside an accuracy of 0.05.
    choice_accuracy(preds, answers)   fraction of predicted indices equal to the answers; a
                              prediction of None (nothing parsed) counts as wrong

Both text metrics use a single reference per hypothesis, as ScienceQA's rationales (``solution``)
have one. An empty hypothesis scores 0 against a non-empty reference; pairs whose reference is
empty should be left out by the caller (15 of ScienceQA's 100 shared problems have no solution).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Sequence

__all__ = ["bleu", "sentence_bleu", "rouge_l", "choice_accuracy"]


def _check_pairs(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} references")
    if not hypotheses:
        raise ValueError("no hypotheses to score")


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Corpus BLEU (0-1) of hypotheses against one reference each."""
    import sacrebleu

    _check_pairs(hypotheses, references)
    return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score) / 100.0


def sentence_bleu(hypothesis: str, reference: str) -> float:
    """Sentence BLEU (0-1, sacrebleu's default smoothing for sentences)."""
    import sacrebleu

    return float(sacrebleu.sentence_bleu(hypothesis, [reference]).score) / 100.0


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(hypotheses: Sequence[str], references: Sequence[str]) -> float:
    """Mean ROUGE-L F-measure over pairs, on a 0-1 scale like :func:`bleu`."""
    _check_pairs(hypotheses, references)
    scorer = _rouge_scorer()
    total = sum(scorer.score(ref, hyp)["rougeL"].fmeasure for hyp, ref in zip(hypotheses, references))
    return total / len(hypotheses)


def choice_accuracy(predictions: Sequence[int | None], answers: Sequence[int]) -> float:
    """Fraction of predictions equal to the answer index (``None`` = nothing parsed = wrong)."""
    if len(predictions) != len(answers):
        raise ValueError(f"{len(predictions)} predictions but {len(answers)} answers")
    if not answers:
        raise ValueError("no predictions to score")
    return sum(p is not None and p == a for p, a in zip(predictions, answers)) / len(answers)
