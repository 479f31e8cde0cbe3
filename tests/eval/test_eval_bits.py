"""The bits suite: reference answers score 100% per question and length, wrong ones 0, chance
matches a brute-force enumeration, the gate is averaged per question, and a run's training
questions decide which questions are asked."""

from __future__ import annotations

import argparse
import itertools

import pytest

from corpus.synthetic.bits import QUESTIONS, answer
from trainer.eval.datasets import DataSources
from trainer.eval.suites import bits
from trainer.eval.suites.base import Options


def fixed(items, answer_of):
    def generate_fn(prompts):
        assert prompts == [it.prompt for it in items]
        return [answer_of(it) for it in items]
    return generate_fn


def test_references_score_100_per_question_and_length_and_wrong_answers_0():
    items, counts, notes = bits.build_items(DataSources(), Options(limit=12))
    assert counts["overlap_checked"] == 0 and "held out by construction" in notes[0]
    assert {it.group for it in items} == set(QUESTIONS) and {it.tier for it in items} == set(bits.DEFAULT_TIERS)
    right = bits.evaluate(items, fixed(items, lambda it: it.reference))
    m = right.metrics
    assert m["accuracy"] == 1.0 and m["n"] == len(items) == 12 * len(QUESTIONS)
    assert all(m[f"{q}/accuracy"] == 1.0 and m[f"{q}/n"] == 12 for q in QUESTIONS)
    lengths = [k for k in m if "/len" in k and k.endswith("/accuracy")]
    assert lengths and all(m[k] == 1.0 for k in lengths) and "gate/count" not in m
    flipped = {"odd": "even", "even": "odd"}
    wrong = bits.evaluate(items, fixed(items, lambda it: flipped.get(it.reference) or it.reference + " 1"))
    assert wrong.metrics["accuracy"] == 0.0
    # a constant guess scores the share of strings it is right for
    odd = bits.evaluate(items, fixed(items, lambda it: "odd"))
    parity = [it for it in items if it.group == "parity"]
    assert odd.metrics["parity/accuracy"] == sum(it.reference == "odd" for it in parity) / len(parity)


@pytest.mark.parametrize("question", QUESTIONS)
def test_chance_is_the_best_guess_over_every_string_of_the_length(question):
    for n in range(1, 11):
        answers = [answer(question, "".join(b)) for b in itertools.product("01", repeat=n)]
        best = max(answers.count(a) for a in set(answers)) / len(answers)
        assert bits.chance(question, n) == pytest.approx(best, abs=1e-12), (question, n)


def test_gate_is_averaged_per_question():
    items, _, _ = bits.build_items(DataSources(), Options(limit=3))
    gates = {q: 0.1 * (k + 1) for k, q in enumerate(QUESTIONS)}

    def probe(prompts):
        return [{"gate": gates[it.group]} for it in items]

    result = bits.evaluate(items, fixed(items, lambda it: it.reference), probe)
    assert all(result.metrics[f"gate/{q}"] == pytest.approx(g) for q, g in gates.items())


def test_the_runs_questions_decide_what_is_asked(tmp_path):
    """A real build of synthetic:bits --questions count,mod3 in a catalog: only those are asked,
    and none of the asked strings is a training string."""
    from corpus import api
    from corpus.synthetic.bits import is_holdout

    root = tmp_path / "data"
    tok = tmp_path / "tok.json"
    from corpus.tokenizer import main as tokenizer_main

    assert tokenizer_main(["train", "--synthetic", "200", "--vocab-size", "300", "--out", str(tok)]) == 0
    built = api.build_source("synthetic:bits", data_dir=root, tokenizer=str(tok), count=300, tiers="0-1",
                             questions="count,mod3", max_seq_len=64)
    assert built.status == "published"
    items, counts, _ = bits.build_items(DataSources(data_root=root), Options(limit=10))
    assert counts["overlap_checked"] == 1 and counts["dropped_seen"] == 0
    assert {it.group for it in items} == {"count", "mod3"} and {it.tier for it in items} == {0, 1}
    assert all(is_holdout(it.meta["bits"]) for it in items)
    seen, _ = bits.training_strings(DataSources(data_root=root))
    assert seen and not seen & {it.meta["bits"] for it in items} and not any(is_holdout(b) for b in seen)
