"""Bits: answer-only questions about one bit string, the test bed of "does the HRM compute?".

Every item is a string of spaced bits (one token per bit with any byte-level BPE) and one
question about the number of 1s in it, answered with no worked steps:

    count          "Bits: 1 0 1 1. How many 1s?"                            -> "3"
    parity         "... Is the number of 1s even or odd?"                   -> "odd"
    mod3           "... What is the number of 1s modulo 3?"                 -> "0"
    prefix_parity  "... Parity of the 1s after each bit?"                   -> "1 1 0 1"   (one digit per bit)
    binary         "... How many 1s, in binary?"                            -> "1 1"       (spaced binary digits)

Count is linear in the bits (a decoder integrates it); parity and mod 3 take one nonlinear step
from the count; the two multi-token answers need state carried from one answer token to the
next. Tiers are lengths: 4-6, 7-10, 11-14, 15-20 bits.

Held-out strings: a string belongs to the holdout when the first byte of
``sha256("hrm-bits-holdout:" + bits)`` is below ``HOLDOUT_SHARE * 256``. Training items
(``Task.build``) never draw such a string, whatever the seed or count; :func:`holdout_items`
draws only such strings and asks every question of each. So no evaluated string was ever a
training string, at every length, without reading the catalog.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Iterator

from corpus.synthetic.base import Item, Problem, Task, ranged

TIER_LENGTH = {0: (4, 6), 1: (7, 10), 2: (11, 14), 3: (15, 20)}
QUESTIONS = ("count", "parity", "mod3", "prefix_parity", "binary")
ASK = {
    "count": "How many 1s?",
    "parity": "Is the number of 1s even or odd?",
    "mod3": "What is the number of 1s modulo 3?",
    "prefix_parity": "Parity of the 1s after each bit?",
    "binary": "How many 1s, in binary?",
}
HOLDOUT_SHARE = 0.25
_HOLDOUT_BELOW = int(HOLDOUT_SHARE * 256)
_DRAWS = 10_000  # rejection sampling gives up after this many draws (never reached: 25% rejected)
_HOLDOUT_TRIES = 40  # draws per wanted held-out string before a small tier stops short


def is_holdout(bits: str) -> bool:
    """Whether a bit string (``"1011"``, no spaces) is reserved for evaluation."""
    return hashlib.sha256(f"hrm-bits-holdout:{bits}".encode()).digest()[0] < _HOLDOUT_BELOW


def answer(question: str, bits: str) -> str:
    """The expected answer, computed from the bits alone (the checker's reference)."""
    ones = bits.count("1")
    if question == "count":
        return str(ones)
    if question == "parity":
        return "odd" if ones % 2 else "even"
    if question == "mod3":
        return str(ones % 3)
    if question == "prefix_parity":
        running, out = 0, []
        for b in bits:
            running ^= b == "1"
            out.append(str(int(running)))
        return " ".join(out)
    if question == "binary":
        return " ".join(format(ones, "b"))
    raise ValueError(f"unknown bits question {question!r}; known: {', '.join(QUESTIONS)}")


def prompt(question: str, bits: str) -> str:
    return f"Bits: {' '.join(bits)}. {ASK[question]}"


def _draw(rng: random.Random, length: int, held_out: bool) -> str:
    for _ in range(_DRAWS):
        bits = "".join(rng.choice("01") for _ in range(length))
        if is_holdout(bits) == held_out:
            return bits
    raise RuntimeError(f"bits: no {'held-out' if held_out else 'training'} string of length {length} "
                       f"in {_DRAWS} draws")


def _problem(question: str, bits: str) -> Problem:
    return Problem(prompt(question, bits), [], answer(question, bits),
                   {"length": len(bits), "ones": bits.count("1"), "answer_tokens": len(answer(question, bits).split())},
                   {"question": question, "bits": bits})


def parse_questions(spec: str | tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """"count,parity,mod3" -> ("count", "parity", "mod3") in QUESTIONS order; None/"all" -> all."""
    if spec is None or spec == "all":
        return QUESTIONS
    names = [q.strip() for q in (spec.split(",") if isinstance(spec, str) else spec) if q.strip()]
    unknown = [q for q in names if q not in QUESTIONS]
    if not names or unknown:
        raise ValueError(f"bits questions must be some of {', '.join(QUESTIONS)}, got {spec!r}")
    return tuple(q for q in QUESTIONS if q in names)


class Bits(Task):
    """``questions``: the questions training items ask (a build's ``--questions``), drawn uniformly."""

    name = "bits"
    summary = "answer-only count / parity / mod 3 / running parity / binary count of a bit string"
    hardness = ("length", "ones")
    answer_only = True

    def __init__(self, questions: tuple[str, ...] = QUESTIONS):
        self.questions = parse_questions(questions)

    def build(self, rng: random.Random, tier: int) -> Problem:
        length = ranged(rng, TIER_LENGTH[tier])
        question = rng.choice(self.questions)
        return _problem(question, _draw(rng, length, held_out=False))

    def verify(self, meta: dict[str, Any], text: str) -> bool:
        """Exact match after normalising spaces and case: no partial credit on multi-token answers."""
        return " ".join(text.lower().split()) == answer(meta["question"], meta["bits"])


def holdout_items(tiers: tuple[int, ...], per_tier: int, seed: int,
                  questions: tuple[str, ...] = QUESTIONS) -> Iterator[Item]:
    """``per_tier`` distinct held-out strings per tier, each asked every question (paired items).

    Short lengths have few held-out strings (length 4: a handful of 16); a tier yields fewer
    strings when its space runs out, never a training string."""
    from corpus.synthetic import item_rng

    task = Bits()
    for tier in tiers:
        seen: set[str] = set()
        for i in range(per_tier * _HOLDOUT_TRIES):
            if len(seen) == per_tier:
                break
            rng = item_rng(seed, "bits-holdout", tier, i)
            bits = _draw(rng, ranged(rng, TIER_LENGTH[tier]), held_out=True)
            if bits in seen:
                continue
            seen.add(bits)
            for question in questions:
                problem = _problem(question, bits)
                meta = {"task": task.name, "tier": tier, "answer": problem.answer, **problem.meta}
                features = {"steps": 0, **problem.features, "level": tier}
                yield Item(f"bits-holdout-s{seed}-t{tier}-{bits}-{question}", task.name, tier, problem.prompt,
                           problem.answer, problem.answer, features, meta)
