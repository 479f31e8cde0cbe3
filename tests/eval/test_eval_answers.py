"""Final-number extraction and choice-letter parsing, case by case."""

from __future__ import annotations

from fractions import Fraction

import pytest

from trainer.eval.answers import (
    choice_correct,
    choice_letter,
    extract_final_number,
    format_number,
    gsm8k_correct,
    numbers_equal,
    parse_choice,
    parse_number,
)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Natalia sold 48/2 = 24 clips in May.\n#### 72", 72),
        ("#### 1,234", 1234),
        ("He pays 5 + 3 = 8 dollars.\n#### 1,450,000", 1_450_000),
        ("#### -3", -3),
        ("Result: 72 #### 72", 72),
        ("#### 18 dollars", 18),
        ("So she makes $18 every day.", 18),
        ("The answer is 18.", 18),
        ("The answer is 18.00", 18),
        ("It costs 18 dollars", 18),
        ("That is an 18% increase", 18),
        ("It grew 12.5%.", Fraction(25, 2)),
        ("he paid $ 1,000.50 in total", Fraction("1000.5")),
        ("The temperature fell to −5 degrees", -5),
        ("x = -5.", -5),
        ("a loss of -$5", -5),
        ("between 3-5 apples", 5),  # a range, not minus five
        ("pages 5, 6, and 7,", 7),
        ("the list 1,2,3", 3),  # not thousands groups
        ("12,34", 34),
        ("add 3/4 cup", Fraction(3, 4)),
        ("on 1/2/2020 she had", 2020),  # a date is not a fraction
        ("only .5 left", Fraction(1, 2)),
        ("H2O and then 3 more", 3),
        ("so we had 9 left\n#### ", 9),  # a mark with no number after it: the last number before
    ],
)
def test_extract_final_number(text, expected):
    assert extract_final_number(text) == expected


@pytest.mark.parametrize("text", ["", "no numbers here", "####", "H2O"])
def test_extract_final_number_none(text):
    assert extract_final_number(text) is None


def test_equal_numbers_in_different_dress():
    forms = ["18", "18.00", "$18", "18%", "18 dollars", "+18", "#### 18", "€18.0"]
    for a in forms:
        for b in forms:
            assert numbers_equal(a, b), (a, b)
    assert not numbers_equal("18", "18.01")
    assert not numbers_equal("18", "-18")
    assert not numbers_equal(None, "18")
    assert not numbers_equal("no number", "no number")
    assert numbers_equal("0.1", Fraction(1, 10)) and numbers_equal(Fraction(3, 10), "0.3")
    assert parse_number("$1,234.50 and 7") == Fraction("1234.5")


def test_format_number():
    assert format_number(Fraction(18)) == "18"
    assert format_number(Fraction(-3)) == "-3"
    assert format_number(Fraction(3, 4)) == "0.75"
    assert format_number(Fraction(-1, 8)) == "-0.125"
    assert format_number(Fraction(-21, 20)) == "-1.05"
    assert format_number(Fraction(1, 3)) == "1/3"
    for value in (Fraction(18), Fraction(-21, 20), Fraction(1, 3), Fraction(7, 16)):
        assert extract_final_number(format_number(value)) == value


def test_gsm8k_correct():
    reference = "Janet sells 16 - 3 - 4 = 9 duck eggs a day.\nShe makes 9 * 2 = $18 every day.\n#### 18"
    assert gsm8k_correct("She makes $18.", reference)
    assert gsm8k_correct("...\n#### 18.00", reference)
    assert gsm8k_correct("18", "18")
    assert not gsm8k_correct("She makes $19.", reference)
    assert not gsm8k_correct("I do not know.", reference)
    # The last number counts, not the first: a model that restates the question is not credited.
    assert not gsm8k_correct("She sells 18 eggs... so the answer is 20", reference)
    with pytest.raises(ValueError):
        gsm8k_correct("18", "no number in the reference")


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The answer is B.", 1),
        ("The answer is (B).", 1),
        ("the answer is (c)", 2),
        ("the answer is b.", 1),
        ("Answer: B", 1),
        ("Answer: D because the others are wrong", 3),
        ("The correct answer is C", 2),
        ("Answer is: **C**", 2),
        ("(B)", 1),
        ("B) apostrophe", 1),
        ("C. the dog", 2),
        ("B", 1),
        ("b", 1),
        ("**A**", 0),
        ("Option C is right", 2),
        ("I think the answer is A, no wait, the answer is D.", 3),  # the last statement wins
        ("(A) is tempting, but the answer is (B).", 1),  # a statement beats a mention
        ("Solution: Compare (A) and (C).\nThe answer is B.", 1),
    ],
)
def test_parse_choice(text, expected):
    assert parse_choice(text, 4) == expected


@pytest.mark.parametrize(
    "text",
    [
        "A cat sat on the mat.",  # an article, not a choice
        "the answer is a cat",
        "I am not sure.",
        "The answer is E.",  # out of range for 4 choices
        "",
    ],
)
def test_parse_choice_none(text):
    assert parse_choice(text, 4) is None


def test_parse_choice_by_choice_text():
    choices = ["chiasmus", "apostrophe", "a cat"]
    assert parse_choice("The answer is apostrophe.", choices=choices) == 1
    assert parse_choice("a cat", choices=choices) == 2
    assert parse_choice("the answer is a cat", choices=choices) == 2
    assert parse_choice("something else", choices=choices) is None
    assert parse_choice("The answer is (C).", choices=choices) == 2
    assert parse_choice("The answer is (D).", choices=choices) is None  # only 3 choices


def test_choice_letter_and_correct():
    assert [choice_letter(i) for i in range(5)] == list("ABCDE")
    with pytest.raises(ValueError):
        choice_letter(26)
    assert choice_correct("The answer is (B).", 1, 2)
    assert not choice_correct("The answer is (A).", 1, 2)
