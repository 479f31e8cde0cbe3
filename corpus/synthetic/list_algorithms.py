"""List algorithms traced one element per step: sort, reverse, count, max, min.

Tier grows the list (3-5 elements at tier 0 ... 15-20 at tier 3) and the value range (single
digits, then two and three digits with negatives). The checker recomputes from the stored list.
"""

from __future__ import annotations

import random
from typing import Any

from corpus.synthetic.base import Problem, Task, parse_int_list, parse_number, ranged

# tier -> (list length, value range)
TIER_TABLE = {
    0: ((3, 5), (0, 9)),
    1: ((6, 9), (0, 99)),
    2: ((10, 14), (-99, 199)),
    3: ((15, 20), (-500, 999)),
}
OPS = ("sort_asc", "sort_desc", "reverse", "count", "max", "min")
LIST_OPS = ("sort_asc", "sort_desc", "reverse")


def show(values: list[int]) -> str:
    return "[" + ", ".join(map(str, values)) + "]"


def solve(op: str, values: list[int], needle: int | None = None) -> list[int] | int:
    """The reference answer, computed with Python's builtins (not the traced algorithm)."""
    if op == "sort_asc":
        return sorted(values)
    if op == "sort_desc":
        return sorted(values, reverse=True)
    if op == "reverse":
        return values[::-1]
    if op == "count":
        return values.count(needle)
    if op == "max":
        return max(values)
    if op == "min":
        return min(values)
    raise ValueError(f"unknown op {op!r}")


def trace_sort(values: list[int], descending: bool) -> list[str]:
    """Selection sort: each pass moves the extreme of what is left to the sorted part."""
    remaining, done, steps = list(values), [], []  # done: the sorted prefix
    word = "largest" if descending else "smallest"
    for i in range(len(values)):
        pick = max(remaining) if descending else min(remaining)
        remaining.remove(pick)
        done.append(pick)
        steps.append(f"Pass {i + 1}: the {word} remaining value is {pick}")
    return steps + [f"In order: {show(done)}"]


def trace_reverse(values: list[int]) -> list[str]:
    steps = [f"Position {pos} is {values[pos - 1]}" for pos in range(len(values), 0, -1)]
    intro = "Read the list from the last position to the first."
    return [intro] + steps + [f"Reversed: {show(values[::-1])}"]


def trace_count(values: list[int], needle: int) -> list[str]:
    count, steps = 0, []
    for pos, v in enumerate(values, 1):
        if v == needle:
            count += 1
            steps.append(f"Position {pos}: {v} matches, count = {count}")
        else:
            steps.append(f"Position {pos}: {v} does not match, count = {count}")
    return steps


def trace_extreme(values: list[int], largest: bool) -> list[str]:
    word = "maximum" if largest else "minimum"
    best, steps = values[0], [f"Position 1: start with {values[0]} as the {word}"]
    for pos, v in enumerate(values[1:], 2):
        if (v > best) if largest else (v < best):
            steps.append(f"Position {pos}: {v} is {'larger' if largest else 'smaller'}, new {word} {v}")
            best = v
        else:
            steps.append(f"Position {pos}: {v}, keep {best}")
    return steps


class ListAlgorithms(Task):
    name = "lists"
    summary = "sort, reverse, count, max and min over integer lists, traced per element"
    hardness = ("length", "steps", "value_digits")

    def build(self, rng: random.Random, tier: int) -> Problem:
        length_range, (low, high) = TIER_TABLE[tier]
        length = ranged(rng, length_range)
        op = rng.choice(OPS)
        needle = None
        if op == "count":
            pool = [rng.randint(low, high) for _ in range(max(2, length // 3))]
            values = [rng.choice(pool) for _ in range(length)]
            needle = rng.choice(pool)
        else:
            values = [rng.randint(low, high) for _ in range(length)]
        shown = show(values)
        if op in ("sort_asc", "sort_desc"):
            order = "ascending" if op == "sort_asc" else "descending"
            prompt = rng.choice([f"Sort the list {shown} in {order} order.",
                                 f"Arrange these numbers in {order} order: {shown}"])
            steps = trace_sort(values, op == "sort_desc")
        elif op == "reverse":
            prompt = rng.choice([f"Reverse the list {shown}.", f"Write the list {shown} backwards."])
            steps = trace_reverse(values)
        elif op == "count":
            prompt = rng.choice([f"How many times does {needle} appear in the list {shown}?",
                                 f"Count the occurrences of {needle} in {shown}."])
            steps = trace_count(values, needle)
        else:
            word = "largest" if op == "max" else "smallest"
            prompt = rng.choice([f"What is the {word} number in the list {shown}?",
                                 f"Find the {word} value in {shown}."])
            steps = trace_extreme(values, op == "max")
        result = solve(op, values, needle)
        answer = show(result) if isinstance(result, list) else str(result)
        value_digits = sum(len(str(abs(v))) for v in values) / length
        features = {"length": length, "value_digits": round(value_digits, 3)}
        meta = {"op": op, "values": values, "needle": needle}
        return Problem(prompt, steps, answer, features, meta)

    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        expected = solve(meta["op"], [int(v) for v in meta["values"]], meta.get("needle"))
        if isinstance(expected, list):
            return parse_int_list(answer) == expected
        return parse_number(answer) == expected
