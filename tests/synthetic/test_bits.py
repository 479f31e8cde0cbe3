"""The bits test bed: answers against an independent reference, exact-match checking, lengths as
tiers, and a holdout that shares no string with any training item."""

from __future__ import annotations

import collections
import itertools
import operator

import pytest

from corpus.synthetic import TASKS, generate
from corpus.synthetic.bits import QUESTIONS, TIER_LENGTH, holdout_items, is_holdout

BITS = TASKS["bits"]


def reference(question: str, bits: str) -> str:
    """Written from the question's meaning with other tools than the generator (int arithmetic,
    itertools.accumulate, bin())."""
    value = int(bits, 2)
    ones = value.bit_count()
    if question == "count":
        return f"{ones}"
    if question == "parity":
        return ("even", "odd")[ones & 1]
    if question == "mod3":
        return f"{ones - 3 * (ones // 3)}"
    if question == "prefix_parity":
        return " ".join(str(p) for p in itertools.accumulate((int(b) for b in bits), operator.xor))
    if question == "binary":
        return " ".join(bin(ones)[2:])
    raise AssertionError(question)


def test_answers_match_an_independent_reference_and_prompts_show_every_bit():
    seen = collections.Counter()
    for item in generate("bits", 2000, "0-3", seed=3):
        bits, question = item.meta["bits"], item.meta["question"]
        seen[question] += 1
        low, high = TIER_LENGTH[item.tier]
        assert low <= len(bits) == item.features["length"] <= high
        assert item.prompt.startswith(f"Bits: {' '.join(bits)}. ")
        assert item.target == item.answer == reference(question, bits)
        assert BITS.check(item.meta, item.answer) and BITS.check(item.meta, f" {item.answer}\n")
    assert set(seen) == set(QUESTIONS) and min(seen.values()) > 300


def test_exact_match_only():
    meta = {"question": "prefix_parity", "bits": "1101"}
    assert reference("prefix_parity", "1101") == "1 0 0 1"
    assert BITS.check(meta, "1 0 0 1") and BITS.check(meta, "  1  0 0 1 ")
    for wrong in ("1 0 0", "1 0 0 1 1", "1001", "1 0 0 0", "", "odd"):
        assert not BITS.check(meta, wrong), wrong
    assert BITS.check({"question": "binary", "bits": "1111110"}, "1 1 0")
    assert BITS.check({"question": "parity", "bits": "0110"}, "Even")
    assert not BITS.check({"question": "parity", "bits": "0110"}, "even odd")


def test_training_items_are_never_held_out_and_the_holdout_never_trains():
    training = {it.meta["bits"] for it in generate("bits", 6000, "0-2", seed=0)}
    assert not any(is_holdout(b) for b in training)
    # length 4 has 16 strings: training covers every one that is not held out
    assert {b for b in training if len(b) == 4} == {f"{v:04b}" for v in range(16) if not is_holdout(f"{v:04b}")}
    held = list(holdout_items((0, 1, 2), 40, seed=7))
    strings = {it.meta["bits"] for it in held}
    assert strings and not strings & training and all(is_holdout(b) for b in strings)
    # every string is asked every question, each item graded by the same checker
    per_string = collections.Counter(it.meta["bits"] for it in held)
    assert set(per_string.values()) == {len(QUESTIONS)}
    assert all(BITS.check(it.meta, it.target) and it.target == reference(it.meta["question"], it.meta["bits"])
               for it in held)
    tiers = collections.Counter(it.tier for it in held if it.meta["question"] == "count")
    assert tiers[1] == tiers[2] == 40 and 0 < tiers[0] <= 40  # tier 0 (4-6 bits) has few held-out strings
    share = sum(is_holdout(f"{v:014b}") for v in range(2 ** 14)) / 2 ** 14
    assert 0.22 < share < 0.28


def test_holdout_is_deterministic_and_seeded():
    a = [it.native_id for it in holdout_items((1,), 10, seed=7)]
    assert a == [it.native_id for it in holdout_items((1,), 10, seed=7)]
    assert a != [it.native_id for it in holdout_items((1,), 10, seed=8)]


@pytest.mark.parametrize("question", QUESTIONS)
def test_each_question_has_both_short_and_long_strings(question):
    lengths = {len(it.meta["bits"]) for it in generate("bits", 1000, "0-2", seed=1) if it.meta["question"] == question}
    assert lengths == set(range(4, 15))


def test_questions_option_of_the_task_and_the_source():
    import argparse

    from corpus.errors import UserError
    from corpus.sources.synthetic import SOURCES
    from corpus.synthetic import iter_items
    from corpus.synthetic.bits import Bits, parse_questions

    assert parse_questions("mod3, count") == ("count", "mod3") and parse_questions(None) == QUESTIONS
    for bad in ("", "count,sum", "all,count"):
        with pytest.raises(ValueError, match="bits questions must be some of"):
            parse_questions(bad)
    asked = {it.meta["question"] for it in iter_items("bits", 300, "0-2", seed=0, impl=Bits(("parity", "mod3")))}
    assert asked == {"parity", "mod3"}

    cls = SOURCES["synthetic:bits"]
    parser = argparse.ArgumentParser()
    cls.add_arguments(parser)
    args = parser.parse_args(["--count", "40", "--tiers", "1", "--questions", "count,parity,mod3"])
    args.seed = 0
    source = cls(args)
    assert source.options()["questions"] == ["count", "parity", "mod3"]
    records = list(source.records(None, "train", None))
    assert len(records) == 40 and {r.data.meta["question"] for r in records} <= {"count", "parity", "mod3"}
    args.questions = "count,sum"
    with pytest.raises(UserError, match="synthetic:bits: --questions: bits questions must be some of"):
        cls(args).options()
