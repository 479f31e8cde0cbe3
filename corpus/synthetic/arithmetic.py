"""Multi-digit arithmetic worked column by column, so carries and borrows are explicit steps.

Tier grows the operand digits (1-2 -> 7-9 for +/-) and adds long multiplication from tier 1 on.
"""

from __future__ import annotations

import random
from typing import Any

from corpus.synthetic.base import Problem, Task, parse_number, ranged

PLACES = ["ones", "tens", "hundreds", "thousands", "ten-thousands", "hundred-thousands",
          "millions", "ten-millions", "hundred-millions", "billions"]

# tier -> (digits per +/- operand, ops, (multiplicand digits, multiplier digits))
TIER_TABLE: dict[int, tuple[tuple[int, int], str, tuple[tuple[int, int], tuple[int, int]] | None]] = {
    0: ((1, 2), "+-", None),
    1: ((3, 4), "+-*", ((2, 3), (1, 1))),
    2: ((5, 6), "+-*", ((3, 4), (2, 2))),
    3: ((7, 9), "+-*", ((4, 5), (2, 3))),
}


def number_with_digits(rng: random.Random, digits: int) -> int:
    return rng.randint(10 ** (digits - 1) if digits > 1 else 0, 10**digits - 1)


def digits_of(n: int) -> list[int]:
    """Least significant first."""
    return [int(c) for c in reversed(str(n))]


def add_steps(a: int, b: int) -> tuple[list[str], int]:
    da, db = digits_of(a), digits_of(b)
    steps, carry, carries = [], 0, 0
    for i in range(max(len(da), len(db))):
        x, y = (da[i] if i < len(da) else 0), (db[i] if i < len(db) else 0)
        total = x + y + carry
        expr = f"{x} + {y}" + (f" + {carry} (carry)" if carry else "")
        line = f"{PLACES[i]}: {expr} = {total}, write {total % 10}"
        carry = total // 10
        if carry:
            carries += 1
            line += f", carry {carry}"
        steps.append(line)
    if carry:
        steps.append(f"{PLACES[len(steps)]}: write the final carry {carry}")
    return steps, carries


def sub_steps(a: int, b: int) -> tuple[list[str], int]:
    da, db = digits_of(a), digits_of(b)
    steps, borrow, borrows = [], 0, 0
    for i in range(len(da)):
        x, y = da[i], (db[i] if i < len(db) else 0)
        top = f"{x} - 1 (borrowed)" if borrow else f"{x}"
        have = x - borrow
        if have < y:
            borrows += 1
            steps.append(f"{PLACES[i]}: {top} is less than {y}, so borrow 10: "
                         f"{have + 10} - {y} = {have + 10 - y}, write {have + 10 - y}")
            borrow = 1
        else:
            steps.append(f"{PLACES[i]}: {top} - {y} = {have - y}, write {have - y}")
            borrow = 0
    return steps, borrows


def times_digit(a: int, d: int) -> tuple[str, int]:
    """a * d digit by digit, as one line of carries; returns (text, carries)."""
    parts, carry, carries = [], 0, 0
    for x in digits_of(a):
        total = x * d + carry
        parts.append(f"{d} x {x}" + (f" + {carry}" if carry else "") + f" = {total}")
        carry = total // 10
        carries += carry > 0
    return "; ".join(parts), carries


def mul_steps(a: int, b: int) -> tuple[list[str], int]:
    steps, carries, partials = [], 0, []
    for i, d in enumerate(digits_of(b)):
        work, c = times_digit(a, d)
        carries += c
        shifted = a * d * 10**i
        shift = f", shifted {i} place{'s' if i > 1 else ''}: {shifted}" if i else ""
        steps.append(f"{PLACES[i]} digit {d}: {work}; so {a} x {d} = {a * d}{shift}")
        partials.append(shifted)
    if len(partials) > 1:
        steps.append("add the partial products: " + " + ".join(map(str, partials)) + f" = {sum(partials)}")
    return steps, carries


class Arithmetic(Task):
    name = "arith"
    summary = "multi-digit addition, subtraction and long multiplication with carries shown"
    hardness = ("digits", "carries", "steps", "result_digits")

    def build(self, rng: random.Random, tier: int) -> Problem:
        add_digits, ops, mul_digits = TIER_TABLE[tier]
        op = rng.choice(ops)
        if op == "*":
            assert mul_digits is not None
            a = number_with_digits(rng, ranged(rng, mul_digits[0]))
            b = number_with_digits(rng, ranged(rng, mul_digits[1]))
            b = b if b > 1 else rng.randint(2, 9)
            work, carries = mul_steps(a, b)
            intro = f"Multiply {a} by each digit of {b}, from the right."
            verb = "times"
        else:
            a = number_with_digits(rng, ranged(rng, add_digits))
            b = number_with_digits(rng, ranged(rng, add_digits))
            if op == "-" and b > a:
                a, b = b, a
            work, carries = (add_steps if op == "+" else sub_steps)(a, b)
            intro = f"{'Add' if op == '+' else 'Subtract'} column by column, from the right."
            verb = "plus" if op == "+" else "minus"
        result = evaluate(op, a, b)
        prompt = rng.choice([
            f"What is {a} {op} {b}?",
            f"Compute {a} {op} {b}.",
            f"Calculate {a} {verb} {b}. Show your work.",
        ])
        steps = [intro, *work, f"So {a} {op} {b} = {result}."]
        features = {"digits": len(str(a)) + len(str(b)), "carries": carries,
                    "result_digits": len(str(result))}
        return Problem(prompt, steps, str(result), features, {"op": op, "operands": [a, b]})

    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        a, b = meta["operands"]
        return parse_number(answer) == evaluate(meta["op"], int(a), int(b))


def evaluate(op: str, a: int, b: int) -> int:
    return {"+": a + b, "-": a - b, "*": a * b}[op]
