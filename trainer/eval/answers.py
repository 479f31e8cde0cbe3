"""Reading answers out of generated text: final numbers (GSM8K, arithmetic) and choice letters.

Numbers
    ``extract_final_number(text)`` takes the number after the last ``####`` when there is one,
    else the last number in the text. A number may carry a sign (``-`` or ``−``), a currency
    sign (``$``, ``€``, ``£``), thousands separators (``1,234,567``), a decimal part, a percent
    sign or a unit word (``18 dollars``); those are dropped. Values are exact ``Fraction`` s, so
    ``"18.00"``, ``"$18"`` and ``"18"`` are equal and ``"0.1" + "0.2" == "0.3"`` holds without float
    noise. A simple fraction ``3/4`` is read as 0.75; a date-like ``1/2/2020`` as the numbers 1, 2 and
    2020, and a list ``1,2,3`` (not thousands groups) as 1, 2 and 3. A sign counts only where it
    cannot be a hyphen: ``3-5`` is 3 and 5, ``x = -5`` is -5.

Choices
    ``parse_choice(text, n_choices)`` reads the letter a model chose: ``"The answer is B."``,
    ``"The answer is (B)."``, ``"Answer: B"``, ``"(B)"``, ``"B) text"``, ``"B. text"`` or a bare
    ``"B"``. An explicit "answer is" / "answer:" statement wins over a letter merely mentioned;
    among statements of the same kind the last one wins (models revise themselves). ``"A"`` used as
    an article ("A cat ...") is not a choice.
"""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "extract_final_number",
    "parse_number",
    "numbers_equal",
    "format_number",
    "gsm8k_correct",
    "parse_choice",
    "choice_letter",
    "choice_correct",
]

_MINUS = "-\u2212\u2013"  # hyphen-minus, unicode minus, en dash (models emit all three)
# A numeric token: optional sign (not after a word or a closing bracket, so "3-5" is 3 and 5),
# optional currency, then digits with commas, decimals and slashes, split up by _token_values.
_TOKEN = re.compile(
    rf"""
    (?:(?<![\w)\]])(?P<sign>[{_MINUS}+])\s?)?
    (?:[$€£]\s?)?
    (?<![\w.])(?P<body>\d[\d,]*(?:\.\d+)?(?:/\d+(?:\.\d+)?)*|\.\d+)
    """,
    re.VERBOSE,
)
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+")
_FINAL_MARK = "####"


def _plain_values(body: str) -> list[Fraction]:
    """``1,234.5`` -> [1234.5]; ``1,2,3`` (a list, not thousands) -> [1, 2, 3]."""
    whole, dot, decimals = body.partition(".")
    if "," not in whole:
        return [Fraction(body)] if whole or decimals else []
    if _THOUSANDS.fullmatch(whole):
        return [Fraction(whole.replace(",", "") + dot + decimals)]
    parts = [part for part in whole.split(",") if part]
    values = [Fraction(part) for part in parts]
    if decimals and values:
        values[-1] = Fraction(parts[-1] + dot + decimals)
    return values


def _token_values(match: re.Match[str]) -> list[Fraction]:
    body = match.group("body").rstrip(",")
    negative = match.group("sign") is not None and match.group("sign") in _MINUS
    pieces = body.split("/")
    if len(pieces) == 2 and "," not in body and "." not in body and int(pieces[1]) != 0:
        values = [Fraction(int(pieces[0]), int(pieces[1]))]  # 3/4
    else:  # plain number, or a date-like 1/2/2020 read as its parts
        values = [v for piece in pieces for v in _plain_values(piece)]
    if negative and values:
        values[0] = -values[0]
    return values


def _numbers(text: str) -> list[Fraction]:
    return [value for match in _TOKEN.finditer(text) for value in _token_values(match)]


def parse_number(text: str) -> Fraction | None:
    """The one number in a short answer string (``"$1,234.50"``, ``"18%"``, ``"-3 dollars"``).

    Returns ``None`` when the string holds no number; when it holds several, the first wins
    (an answer string like ``"18 (eighteen) apples, 2 left"`` is rare and ambiguous anyway).
    """
    numbers = _numbers(text)
    return numbers[0] if numbers else None


def extract_final_number(text: str) -> Fraction | None:
    """The final numeric answer in a solution: after the last ``####``, else the last number."""
    if _FINAL_MARK in text:
        tail = text.rsplit(_FINAL_MARK, 1)[1]
        numbers = _numbers(tail)
        if numbers:
            return numbers[0]
        # "####" followed by nothing numeric: fall back to the text before the mark.
        text = text.rsplit(_FINAL_MARK, 1)[0]
    numbers = _numbers(text)
    return numbers[-1] if numbers else None


def numbers_equal(a: Fraction | int | str | None, b: Fraction | int | str | None) -> bool:
    """Exact numeric equality; strings are parsed with :func:`parse_number`; ``None`` equals nothing."""
    if isinstance(a, str):
        a = parse_number(a)
    if isinstance(b, str):
        b = parse_number(b)
    if a is None or b is None:
        return False
    return Fraction(a) == Fraction(b)


def format_number(value: Fraction) -> str:
    """Canonical text of a value: ``18``, ``-3``, ``0.75``; non-terminating fractions as ``1/3``."""
    if value.denominator == 1:
        return str(value.numerator)
    den = value.denominator
    while den % 2 == 0:
        den //= 2
    while den % 5 == 0:
        den //= 5
    if den != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = 0
    scaled = value
    while scaled.denominator != 1:
        scaled *= 10
        digits += 1
    sign = "-" if value < 0 else ""
    whole, frac = divmod(abs(scaled.numerator), 10**digits)
    return f"{sign}{whole}.{frac:0{digits}d}"


def gsm8k_correct(generation: str, reference: str) -> bool:
    """Whether a generation's final number equals the reference's (a GSM8K ``answer`` or a number)."""
    ref = extract_final_number(reference)
    if ref is None:
        raise ValueError(f"reference has no number: {reference[-80:]!r}")
    return numbers_equal(extract_final_number(generation), ref)


# --- multiple choice -------------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Strongest evidence first. Each pattern captures the letter in group "L".
_ANSWER_IS = (
    r"(?i:\banswer)\s*(?i:is|would\s+be|will\s+be)?\s*[:=\-]?\s*(?i:is\s*)?:?\s*[*_]{0,2}\s*"
)
_STATED = [
    # "The answer is (B)", "answer: (b)", "Answer is [C]"
    re.compile(_ANSWER_IS + r"[(\[]\s*(?P<L>[A-Za-z])\s*[)\]]"),
    # "The correct answer is B.", "Answer: B", "answer - B because ..."
    re.compile(_ANSWER_IS + r"(?P<L>[A-Z])(?![\w'])"),
    # "the answer is b." (lower case only when nothing but punctuation follows, so that
    # "the answer is a cat" is not read as choice A)
    re.compile(_ANSWER_IS + r"(?P<L>[a-z])(?=\s*$|[.,;:!)\]*_])"),
    # "option B", "choice (C)"
    re.compile(r"(?i:\b(?:option|choice))\s*[(\[]?(?P<L>[A-Z])[)\]]?(?![\w'])"),
]
_MARKED = [
    re.compile(r"\((?P<L>[A-Z])\)"),  # (B)
    re.compile(r"(?:^|\n)\s*(?P<L>[A-Z])\s*[).:](?=\s|$)"),  # "B) text", "B. text", "B:" at a line start
]
_BARE = re.compile(r"^\s*[*_]{0,2}(?P<L>[A-Za-z])[*_]{0,2}\s*[.!]?\s*$")  # the whole text is one letter


def choice_letter(index: int) -> str:
    """``0 -> "A"``."""
    if not 0 <= index < len(_LETTERS):
        raise ValueError(f"choice index out of range: {index}")
    return _LETTERS[index]


def parse_choice(text: str, n_choices: int | None = None, choices: list[str] | None = None) -> int | None:
    """The 0-based index of the choice a text states, or ``None`` when it states none.

    ``n_choices`` (or ``len(choices)``) bounds the valid letters. When no letter is found and
    ``choices`` is given, a text that is exactly one of the choices (case and surrounding
    punctuation ignored) selects it.
    """
    if n_choices is None and choices is not None:
        n_choices = len(choices)
    valid = _LETTERS[: n_choices if n_choices is not None else len(_LETTERS)]

    def pick(patterns: list[re.Pattern[str]]) -> int | None:
        best: tuple[int, int] | None = None  # (position, index) of the last valid hit
        for pattern in patterns:
            for match in pattern.finditer(text):
                letter = match.group("L").upper()
                if letter in valid and (best is None or match.start() > best[0]):
                    best = (match.start(), valid.index(letter))
        return None if best is None else best[1]

    for group in (_STATED, _MARKED):
        found = pick(group)
        if found is not None:
            return found
    bare = _BARE.match(text)
    if bare and bare.group("L").upper() in valid:
        return valid.index(bare.group("L").upper())
    if choices:
        # "The answer is a cat." or just "a cat": the text names exactly one choice.
        stated = re.search(_ANSWER_IS + r"(?P<rest>[^\n]+)", text)
        for candidate in ([stated.group("rest")] if stated else []) + [text]:
            norm = _normalize_choice(candidate)
            hits = [i for i, c in enumerate(choices) if _normalize_choice(c) == norm]
            if len(hits) == 1:
                return hits[0]
    return None


def _normalize_choice(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().strip(".!\"'").strip()).lower()


def choice_correct(generation: str, answer_index: int, n_choices: int) -> bool:
    """Whether the parsed choice equals the reference index."""
    return parse_choice(generation, n_choices) == answer_index
