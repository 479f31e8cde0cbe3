"""The shared parsing the checkers rest on: answer extraction, numbers, expressions, formulas."""

from __future__ import annotations

from fractions import Fraction

import pytest

from corpus.synthetic import TASKS, expr, extract_answer, logic, parse_number
from corpus.synthetic.derivations import polynomial_matches


@pytest.mark.parametrize("text, expected", [
    ("work\n#### 42", "42"),
    ("#### 1\nmore\n#### -3\n", "-3"),
    ("So the answer is 1,234.", "1,234"),
    ("Final answer: x = 2, y = 3", "x = 2, y = 3"),
    ("blah\n\n  17  \n", "17"),
    ("####", None), ("", None), ("   \n ", None), (None, None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, value", [
    ("1,234", 1234), ("-3", -3), ("$12.50", Fraction(25, 2)), ("7/2", Fraction(7, 2)),
    ("x = -17", -17), ("about 5 apples", 5), ("1,234,567", 1234567), ("3 and then 9", 9),
])
def test_parse_number(text, value):
    assert parse_number(text) == value


def test_parse_number_without_a_number_raises():
    with pytest.raises(ValueError):
        parse_number("none here")


@pytest.mark.parametrize("text, env, value", [
    ("3x^2y - 2(x + 1)", {"x": 2, "y": 5}, 54),
    ("(x + 1)(x - 2)", {"x": 4}, 10),
    ("-x^2", {"x": 3}, -9),
    ("4*x/8 + x**2", {"x": 2}, 5),
    ("2 - -3", {}, 5),
    ("(-5) * 3 - (2 - 7)", {}, -10),
])
def test_expression_evaluation(text, env, value):
    assert expr.evaluate(expr.parse(text), env) == value


@pytest.mark.parametrize("text", ["2 +", "(x + 1", "x ^ y", "3 $ 4", "x^99", "x^2^3"])
def test_expression_parse_errors(text):
    with pytest.raises(ValueError):
        expr.parse(text)


def test_checkers_survive_hostile_answers():
    meta = {"family": "algebra", "expression": "2(x + 1)"}
    for hostile in ("(" * 5000 + "x" + ")" * 5000, "9" * 5000, "x^12" * 200, "\x00", "2x + 2" * 2000):
        assert TASKS["derivations"].check(meta, hostile) is False


def test_polynomial_answers_must_be_expanded_combined_and_equal():
    original = "3(x + 2) - (x - 1)(x + 1) + 2x"
    assert polynomial_matches(original, "-x^2 + 5x + 7")
    assert polynomial_matches(original, "7 + 5x - x^2")      # any order
    assert polynomial_matches(original, "-1x^2 + 5*x + 7")   # any spelling
    assert not polynomial_matches(original, original)         # equal but not expanded
    assert not polynomial_matches(original, "-x^2 + 3x + 2x + 7")  # like terms not combined
    assert not polynomial_matches(original, "-x^2 + 5x + 6")
    assert not polynomial_matches(original, "x^2 + 5x + 7")


def test_logic_parse_show_round_trip_and_precedence():
    f = logic.parse("~(p -> q) | r & s <-> t")
    assert logic.show(f) == "(~(p -> q) | (r & s)) <-> t"
    assert logic.parse(logic.show(f)) == f
    assert logic.parse("p -> q -> r") == logic.parse("p -> (q -> r)")
    assert logic.parse("not p and q or T") == logic.parse("(~p & q) | T")


def test_logic_rules_preserve_meaning_and_end_in_nnf():
    f = logic.parse("~((p <-> q) -> (r & ~~s)) | (p & (p | q))")
    steps = logic.derive(f)
    assert logic.is_nnf(steps[-1][1])
    for _, g in steps:
        assert logic.equivalent(f, g)


def test_logic_checker_wants_nnf_and_equivalence():
    derivations = TASKS["derivations"]
    meta = {"family": "logic", "expression": "~(p -> q)"}
    assert derivations.check(meta, "p & ~q")
    assert derivations.check(meta, "~q & p")           # any equivalent NNF
    assert derivations.check(meta, "#### ~q & p & (q | ~q)")
    assert not derivations.check(meta, "~(p -> q)")     # equivalent, not rewritten
    assert not derivations.check(meta, "~(~p | q)")     # equivalent, negation not pushed in
    assert not derivations.check(meta, "p & q")
    assert not derivations.check(meta, "p & ~q &")      # unparsable
    assert not derivations.check(meta, "p & ~q & " + " & ".join(f"({c} | ~{c})" for c in "abcdefghijklmn"))
    assert not derivations.check(meta, "(" * 5000 + "p" + ")" * 5000)


def test_linear_checker_accepts_any_correct_spelling():
    linear = TASKS["linear"]
    meta = {"variables": "xy", "equations": ["2x + y = 7", "x - y = -1"]}
    for good in ("x = 2, y = 3", "y = 3, x = 2", "x=2 and y=3", "2, 3", "The answer is (2, 3)."):
        assert linear.check(meta, good), good
    for bad in ("x = 3, y = 2", "3, 2", "x = 2", "2", "x = 2, y = 3, x = 4"):
        assert not linear.check(meta, bad), bad


def test_counting_parity_reads_the_last_parity_word():
    counting = TASKS["counting"]
    meta = {"variant": "bit_parity", "sequence": "1101"}
    assert counting.check(meta, "odd") and counting.check(meta, "It is even... no, odd")
    assert not counting.check(meta, "even") and not counting.check(meta, "3")
