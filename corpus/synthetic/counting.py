"""Parity and counting over sequences, counted in chunks of four with a running total.

Variants: parity of the ones in a bit string, parity of a sum, occurrences of a letter, numbers
that satisfy a predicate. Tier grows the sequence (4-8 items at tier 0 ... 40-64 at tier 3), so
the number of chunk steps grows with it. The checker recounts from the stored sequence.
"""

from __future__ import annotations

import random
import re
from typing import Any

from corpus.synthetic.base import Problem, Task, parse_number, ranged

TIER_LENGTH = {0: (4, 8), 1: (10, 16), 2: (20, 32), 3: (40, 64)}
CHUNK = 4
VARIANTS = ("bit_parity", "sum_parity", "letters", "predicate")
PREDICATES = {  # name -> (question phrase, test)
    "even": ("are even", lambda v, k: v % 2 == 0),
    "odd": ("are odd", lambda v, k: v % 2 == 1),
    "greater": ("are greater than {k}", lambda v, k: v > k),
    "multiple": ("are multiples of {k}", lambda v, k: v % k == 0),
}


def parity_word(n: int) -> str:
    return "even" if n % 2 == 0 else "odd"


def chunks(seq: list) -> list[tuple[int, list]]:
    return [(i, seq[i:i + CHUNK]) for i in range(0, len(seq), CHUNK)]


def span(noun: str, start: int, part: list) -> str:
    """"Bits 5-8", or "Bit 9" for a last chunk of one."""
    if len(part) == 1:
        return f"{noun} {start + 1}"
    return f"{noun}s {start + 1}-{start + len(part)}"


def solve(meta: dict[str, Any]) -> int | str:
    """Recount from the stored sequence (no use of the generator's trace)."""
    variant, seq = meta["variant"], meta["sequence"]
    if variant == "bit_parity":
        return parity_word(sum(1 for b in seq if b == "1"))
    if variant == "sum_parity":
        return parity_word(sum(int(v) for v in seq))
    if variant == "letters":
        return sum(1 for c in seq if c == meta["letter"])
    if variant == "predicate":
        test = PREDICATES[meta["predicate"]][1]
        return sum(1 for v in seq if test(int(v), meta["k"]))
    raise ValueError(f"unknown variant {variant!r}")


def build_bits(rng: random.Random, length: int) -> tuple[str, list[str], dict]:
    bits = [rng.choice("01") for _ in range(length)]
    text = "".join(bits)
    prompt = rng.choice([f"Is the number of 1s in the bit string {text} even or odd?",
                         f"Count the ones in {text}. Is that count even or odd?"])
    total, steps = 0, []
    for start, part in chunks(bits):
        ones = part.count("1")
        total += ones
        plural = "one" if ones == 1 else "ones"
        steps.append(f"{span('Bit', start, part)}: {''.join(part)} has {ones} {plural}; "
                     f"total {total} ({parity_word(total)})")
    steps.append(f"{total} ones is {parity_word(total)}.")
    return prompt, steps, {"sequence": text}


def build_sum(rng: random.Random, length: int) -> tuple[str, list[str], dict]:
    values = [rng.randint(1, 99) for _ in range(length)]
    shown = ", ".join(map(str, values))
    prompt = f"Without adding them up fully, is the sum of these numbers even or odd? {shown}"
    odd, steps = 0, []
    for start, part in chunks(values):
        odds = [v for v in part if v % 2]
        odd += len(odds)
        listed = ", ".join(map(str, odds)) if odds else "none"
        steps.append(f"{span('Number', start, part)}: odd ones {listed}; {odd} odd so far")
    steps.append(f"A sum is odd exactly when it has an odd number of odd terms; {odd} is "
                 f"{parity_word(odd)}, so the sum is {parity_word(odd)}.")
    return prompt, steps, {"sequence": values}


def build_letters(rng: random.Random, length: int) -> tuple[str, list[str], dict]:
    alphabet = rng.sample("abcdehkmnoprst", rng.randint(3, 5))
    letters = [rng.choice(alphabet) for _ in range(length)]
    letter = rng.choice(alphabet)
    text = "".join(letters)
    prompt = rng.choice([f'How many times does the letter "{letter}" appear in "{text}"?',
                         f'Count the letter "{letter}" in the string "{text}".'])
    total, steps = 0, []
    for start, part in chunks(letters):
        hits = part.count(letter)
        total += hits
        steps.append(f'{span("Letter", start, part)}: "{"".join(part)}" has {hits}; total {total}')
    steps.append(f'The letter "{letter}" appears {total} times.')
    return prompt, steps, {"sequence": text, "letter": letter}


def build_predicate(rng: random.Random, length: int) -> tuple[str, list[str], dict]:
    name = rng.choice(sorted(PREDICATES))
    k = {"greater": rng.randint(10, 90), "multiple": rng.randint(3, 7)}.get(name, 0)
    phrase, test = PREDICATES[name]
    phrase = phrase.format(k=k)
    values = [rng.randint(1, 99) for _ in range(length)]
    shown = ", ".join(map(str, values))
    prompt = f"How many of these numbers {phrase}? {shown}"
    total, steps = 0, []
    for start, part in chunks(values):
        hits = [v for v in part if test(v, k)]
        total += len(hits)
        listed = ", ".join(map(str, hits)) if hits else "none"
        steps.append(f"{span('Number', start, part)}: {listed}; total {total}")
    steps.append(f"{total} of the numbers {phrase}.")
    return prompt, steps, {"sequence": values, "predicate": name, "k": k}


BUILDERS = {"bit_parity": build_bits, "sum_parity": build_sum, "letters": build_letters,
            "predicate": build_predicate}


class Counting(Task):
    name = "counting"
    summary = "parity and counting over bit strings, letters and number lists, in chunks"
    hardness = ("length", "steps")

    def build(self, rng: random.Random, tier: int) -> Problem:
        length = ranged(rng, TIER_LENGTH[tier])
        variant = rng.choice(VARIANTS)
        prompt, steps, meta = BUILDERS[variant](rng, length)
        meta["variant"] = variant
        answer = str(solve(meta))
        return Problem(prompt, steps, answer, {"length": length}, meta)

    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        expected = solve(meta)
        if isinstance(expected, str):
            words = re.findall(r"\b(even|odd)\b", answer.lower())
            return bool(words) and words[-1] == expected
        return parse_number(answer) == expected
