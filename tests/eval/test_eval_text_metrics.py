"""BLEU, ROUGE-L and choice accuracy against values worked out by hand."""

from __future__ import annotations

import math

import pytest

from trainer.eval.code_exec import pass_at_1, pass_at_k
from trainer.eval.text_metrics import bleu, choice_accuracy, rouge_l, sentence_bleu


def test_bleu_identical_is_1_and_disjoint_is_0():
    refs = ["the cat sat on the mat", "plants make food from sunlight"]
    assert bleu(refs, refs) == pytest.approx(1.0)
    assert bleu(["zebra quantum violin", "orbit pickle lantern"], refs) == pytest.approx(0.0)


def test_bleu_brevity_penalty_by_hand():
    # Every n-gram of the hypothesis is in the reference (precisions 1), but it is one word short:
    # BLEU = BP = exp(1 - 7/6).
    hyp, ref = "the cat sat on the mat", "the cat sat on the mat today"
    assert sentence_bleu(hyp, ref) == pytest.approx(math.exp(1 - 7 / 6), abs=1e-8)
    assert bleu([hyp], [ref]) == pytest.approx(math.exp(1 - 7 / 6), abs=1e-8)


def test_rouge_l_by_hand():
    # LCS("the cat was found under the bed", "the cat was under the bed") = 6 tokens:
    # P = 6/7, R = 6/6, F = 2PR/(P+R) = 12/13.
    hyp, ref = "the cat was found under the bed", "the cat was under the bed"
    assert rouge_l([hyp], [ref]) == pytest.approx(12 / 13)
    # The mean over pairs: one perfect pair and one with no overlap.
    assert rouge_l([ref, "zebra"], [ref, "giraffe"]) == pytest.approx(0.5)
    # Stemming: "sits" and "sitting" both stem to "sit".
    assert rouge_l(["the cat sits"], ["the cat sitting"]) == pytest.approx(1.0)


def test_metrics_reject_mismatched_or_empty_input():
    with pytest.raises(ValueError):
        bleu(["a"], ["a", "b"])
    with pytest.raises(ValueError):
        rouge_l([], [])
    with pytest.raises(ValueError):
        choice_accuracy([0], [0, 1])
    with pytest.raises(ValueError):
        pass_at_1([])


def test_choice_accuracy():
    assert choice_accuracy([0, 1, 2, None], [0, 1, 3, 0]) == 0.5
    assert choice_accuracy([None, None], [0, 0]) == 0.0


def test_pass_at_k():
    assert pass_at_1([True, False, True, True]) == 0.75
    assert pass_at_k(10, 0, 1) == 0.0
    assert pass_at_k(10, 10, 5) == 1.0
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert pass_at_k(4, 1, 2) == pytest.approx(1 - math.comb(3, 2) / math.comb(4, 2))  # 0.5
    with pytest.raises(ValueError):
        pass_at_k(3, 4, 1)
