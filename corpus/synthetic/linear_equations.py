"""Linear equations with whole-number solutions, solved by balancing and elimination.

Tier 0: ``ax + b = c``. Tier 1: unknown on both sides, sometimes behind parentheses. Tier 2: two
equations in two unknowns. Tier 3: three in three. The checker parses the stored equation text
and substitutes the candidate values, so any correct form of the answer passes.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction
from math import gcd
from typing import Any

from corpus.synthetic import expr
from corpus.synthetic.base import Problem, Task, parse_number, signed

VARIABLES = {1: "xntk", 2: ("xy", "ab", "pq"), 3: ("xyz", "abc", "pqr")}


def nonzero(rng: random.Random, bound: int) -> int:
    return rng.choice([v for v in range(-bound, bound + 1) if v])


def linear(coefs: list[int], names: str) -> str:
    """"3x - y + 2z": a linear combination, skipping zero terms and unit coefficients."""
    out = ""
    for c, v in zip(coefs, names):
        if c == 0:
            continue
        body = v if abs(c) == 1 else f"{abs(c)}{v}"
        out += (f"-{body}" if c < 0 else body) if not out else (f" - {body}" if c < 0 else f" + {body}")
    return out or "0"


def equation(row: list[int], names: str) -> str:
    return f"{linear(row[:-1], names)} = {row[-1]}"


def balance_constant(value: int) -> str:
    return f"Subtract {value} from both sides" if value > 0 else f"Add {-value} to both sides"


def solve_one_side(rng: random.Random) -> tuple[str, list[str], dict]:
    """Tier 0: ax + b = c."""
    v = rng.choice(VARIABLES[1])
    a, x, b = nonzero(rng, 12), rng.randint(-15, 15), nonzero(rng, 30)
    c = a * x + b
    text = f"{linear([a], v)}{signed(b)} = {c}"
    steps = [f"{balance_constant(b)}: {linear([a], v)} = {c - b}"]
    if a != 1:
        steps.append(f"Divide both sides by {a}: {v} = {x}")
    return text, steps, {"variables": v, "solution": [x], "terms": 3}


def side(coef: int, const: int, v: str) -> str:
    """"3x - 4", or "3x" when the constant is zero."""
    return f"{linear([coef], v)}{signed(const)}" if const else linear([coef], v)


def solve_both_sides(rng: random.Random) -> tuple[str, list[str], dict]:
    """Tier 1: ax + b = cx + d, or p(x + q) = cx + d with a distribute step first."""
    v = rng.choice(VARIABLES[1])
    x = rng.randint(-15, 15)
    c = nonzero(rng, 9)
    a = rng.choice([k for k in range(-9, 10) if k and k != c])
    steps = []
    if rng.random() < 0.5:
        p = rng.choice([k for k in range(2, 7) if (a % k == 0)] or [1])
        q_total = rng.randint(-20, 20)
        q = q_total // p
        b = p * q
        d = a * x + b - c * x
        if p > 1 and q:
            left = f"{p}({linear([a // p], v)}{signed(q)})"
            steps.append(f"Distribute {p}: {linear([a], v)}{signed(b)} = {side(c, d, v)}")
            terms = 5
        else:
            left = f"{linear([a], v)}{signed(b)}" if b else linear([a], v)
            terms = 4 if b else 3
    else:
        b = nonzero(rng, 25)
        d = a * x + b - c * x
        left, terms = f"{linear([a], v)}{signed(b)}", 4
    right = side(c, d, v)
    terms += 1 if d else 0
    move = f"Subtract {linear([c], v)} from both sides" if c > 0 else f"Add {linear([-c], v)} to both sides"
    after_move = f"{linear([a - c], v)}{signed(b)} = {d}" if b else f"{linear([a - c], v)} = {d}"
    steps.append(f"{move}: {after_move}")
    if b:
        steps.append(f"{balance_constant(b)}: {linear([a - c], v)} = {d - b}")
    if a - c != 1:
        steps.append(f"Divide both sides by {a - c}: {v} = {x}")
    return f"{left} = {right}", steps, {"variables": v, "solution": [x], "terms": terms}


def combine(rows: dict[str, list[int]], keep: str, drop: str, col: int, names: str,
            label: str) -> tuple[list[int], list[str]]:
    """Eliminate column ``col`` from row ``drop`` using row ``keep``: the new row and its steps."""
    r_keep, r_drop = rows[keep], rows[drop]
    lcm = abs(r_keep[col] * r_drop[col]) // gcd(r_keep[col], r_drop[col])
    m_drop, m_keep = lcm // abs(r_drop[col]), lcm // abs(r_keep[col])
    scaled_drop, scaled_keep = [m_drop * a for a in r_drop], [m_keep * b for b in r_keep]
    steps = [f"Multiply ({name}) by {m}: {equation(row, names)}"
             for name, m, row in ((drop, m_drop, scaled_drop), (keep, m_keep, scaled_keep)) if m != 1]
    same_sign = (r_keep[col] > 0) == (r_drop[col] > 0)
    new = [a - b if same_sign else a + b for a, b in zip(scaled_drop, scaled_keep)]

    def times(m: int, name: str) -> str:
        return f"({name})" if m == 1 else f"{m} times ({name})"

    text = (f"{times(m_drop, drop)} {'minus' if same_sign else 'plus'} {times(m_keep, keep)} "
            f"eliminates {names[col]}: {equation(new, names)}")
    text = text[0].upper() + text[1:]
    g = gcd(*new)
    if g and new[col + 1] < 0:
        g = -g
    if g and g != 1:
        new = [a // g for a in new]
        text += f"; divide by {g}: {equation(new, names)}"
    return new, steps + [f"{text} ({label})"]


def substitute(row: list[int], known: dict[str, int], target: str, names: str,
               label: str) -> tuple[int, list[str]]:
    """Solve ``row`` for ``target`` given the ``known`` values: its value and the steps."""
    coef = row[names.index(target)]
    known_sum = sum(row[names.index(k)] * val for k, val in known.items())
    value = (row[-1] - known_sum) // coef
    steps, plain = [], linear([coef], target)
    if known:
        given = ", ".join(f"{k} = {val}" for k, val in known.items())
        plugged = plain + "".join(
            f" {'-' if row[names.index(k)] < 0 else '+'} {abs(row[names.index(k)])}*({val})"
            for k, val in known.items() if row[names.index(k)])
        simplified = f", so {plain}{signed(known_sum)} = {row[-1]}" if known_sum else ""
        steps.append(f"Substitute {given} into ({label}): {plugged} = {row[-1]}{simplified}")
    parts = []
    if known_sum:
        parts.append(f"{balance_constant(known_sum)}: {plain} = {row[-1] - known_sum}")
    if coef != 1:
        parts.append(f"divide both sides by {coef}: {target} = {value}")
    if not known:
        steps.append(f"From ({label}): {target} = {value}" if coef == 1 else
                     f"Divide ({label}) by {coef}: {target} = {value}")
    else:
        solved = "; ".join(parts) or f"so {target} = {value}"
        steps.append(solved[0].upper() + solved[1:])
    return value, steps


def solve_system(rng: random.Random, n: int) -> tuple[str, list[str], dict]:
    """Tiers 2-3: n equations in n unknowns; forward elimination, then back-substitution."""
    names = rng.choice(VARIABLES[n])
    bound, sol_bound = (6, 9) if n == 2 else (5, 12)
    while True:
        solution = [rng.randint(-sol_bound, sol_bound) for _ in range(n)]
        rows = {}
        for i in range(n):
            coefs = [nonzero(rng, bound) for _ in range(n)]
            rows[str(i + 1)] = coefs + [sum(a * s for a, s in zip(coefs, solution))]
        work, steps, chain = dict(rows), [], []  # chain[col]: the row that yields variable col
        pending, label, ok = list(rows), n, True
        for col in range(n):
            keep, rest = pending[0], pending[1:]
            ok = ok and work[keep][col] != 0 and all(work[r][col] != 0 for r in rest)
            if not ok:
                break
            chain.append(keep)
            pending = []
            for drop in rest:
                label += 1
                work[str(label)], lines = combine(work, keep, drop, col, names, str(label))
                steps += lines
                pending.append(str(label))
        if not ok or max(abs(a) for row in work.values() for a in row) > 5000:
            continue
        known: dict[str, int] = {}
        for col in range(n - 1, -1, -1):
            value, lines = substitute(work[chain[col]], known, names[col], names, chain[col])
            known = {names[col]: value, **known}
            steps += lines
        assert [known[v] for v in names] == solution
        text = "\n".join(f"({k}) {equation(rows[k], names)}" for k in rows)
        return text, steps, {"variables": names, "solution": solution, "terms": n * (n + 1)}


class LinearEquations(Task):
    name = "linear"
    summary = "one linear equation (tiers 0-1) or a 2x2 / 3x3 system (tiers 2-3), integer solutions"
    hardness = ("steps", "terms")

    def build(self, rng: random.Random, tier: int) -> Problem:
        if tier == 0:
            text, steps, info = solve_one_side(rng)
        elif tier == 1:
            text, steps, info = solve_both_sides(rng)
        else:
            text, steps, info = solve_system(rng, tier)
        names, solution = info["variables"], info["solution"]
        if len(names) == 1:
            prompt = rng.choice([f"Solve for {names}: {text}", f"Find {names} if {text}."])
            equations = [text]
        else:
            prompt = f"Solve the system of equations for {', '.join(names)}:\n{text}"
            equations = [line.split(") ", 1)[1] for line in text.splitlines()]
        answer = ", ".join(f"{v} = {s}" for v, s in zip(names, solution))
        numbers = [abs(int(t)) for eq in equations for t in re.findall(r"\d+", eq)]
        features = {"variables": len(names), "terms": info["terms"],
                    "max_number_digits": len(str(max(numbers)))}
        return Problem(prompt, steps, answer, features, {"variables": names, "equations": equations})

    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        names = meta["variables"]
        values = read_assignment(answer, names)
        for eq in meta["equations"]:
            left, right = eq.split("=")
            if expr.evaluate(expr.parse(left), values) != expr.evaluate(expr.parse(right), values):
                return False
        return True


def read_assignment(answer: str, names: str) -> dict[str, Fraction]:
    """"x = 3, y = -2" (any order), or bare numbers in variable order: "3, -2" or "3"."""
    found = re.findall(r"\b([a-z])\s*=\s*(-?\d+(?:\s*/\s*\d+)?)", answer)
    pairs: dict[str, Fraction] = {}
    for name, text in found:
        value = Fraction(text.replace(" ", ""))
        if pairs.setdefault(name, value) != value:
            raise ValueError(f"{name} is given two values in {answer!r}")
    if all(v in pairs for v in names):
        return {v: pairs[v] for v in names}
    if len(names) == 1:
        return {names: parse_number(answer)}
    numbers = re.findall(r"-?\d+(?:/\d+)?", answer)
    if len(numbers) != len(names):
        raise ValueError(f"expected {len(names)} values in {answer!r}")
    return {v: Fraction(num) for v, num in zip(names, numbers)}
