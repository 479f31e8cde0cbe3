"""Chained word problems: one quantity changed by a story of events, one event per step.

Tier grows the chain (1-2 events at tier 0 ... 6-8 at tier 3) and the size of the numbers.
The checker replays the stored events, so it never trusts the generator's answer.
"""

from __future__ import annotations

import random
from typing import Any

from corpus.synthetic.base import Problem, Task, parse_number, ranged

# tier -> (chain length, start value, small operand)
TIER_TABLE = {
    0: ((1, 2), (5, 20), (2, 9)),
    1: ((3, 4), (10, 50), (2, 15)),
    2: ((5, 6), (20, 120), (3, 30)),
    3: ((6, 8), (50, 400), (5, 60)),
}
MAX_VALUE = 100_000

PEOPLE = [("Maria", "she", "her"), ("Ben", "he", "his"), ("Aisha", "she", "her"), ("Tom", "he", "his"),
          ("Lena", "she", "her"), ("Omar", "he", "his"), ("Priya", "she", "her"), ("Jack", "he", "his"),
          ("Sofia", "she", "her"), ("Leo", "he", "his"), ("Mei", "she", "her"), ("Carlos", "he", "his")]
FRIENDS = ["a friend", "a cousin", "a neighbor", "the teacher", "a classmate", "the shop owner"]
THINGS = [("apple", "apples", "bags"), ("marble", "marbles", "jars"), ("sticker", "stickers", "sheets"),
          ("pencil", "pencils", "boxes"), ("card", "cards", "packs"), ("cookie", "cookies", "trays"),
          ("stamp", "stamps", "albums"), ("shell", "shells", "buckets"), ("book", "books", "crates"),
          ("coin", "coins", "pouches")]
GROUPS = ["friends", "children", "teams", "classmates"]


def apply_event(value: int, event: list) -> int:
    """The quantity after one event; raises ValueError for an event that does not divide evenly."""
    kind, *args = event
    if kind == "add":
        return value + args[0]
    if kind == "sub":
        return value - args[0]
    if kind == "add_groups":
        return value + args[0] * args[1]
    if kind == "sub_groups":
        return value - args[0] * args[1]
    if kind == "mul":
        return value * args[0]
    if kind in ("half", "share"):
        n = 2 if kind == "half" else args[0]
        if value % n:
            raise ValueError(f"{value} does not split into {n}")
        return value // n
    if kind == "sell":
        return value * args[0]
    raise ValueError(f"unknown event {kind!r}")


def replay(start: int, events: list[list]) -> int:
    value = start
    for event in events:
        value = apply_event(value, event)
    return value


def possible_events(rng: random.Random, value: int, small: tuple[int, int]) -> list[list]:
    """Events that keep the quantity a positive whole number below MAX_VALUE."""
    k = ranged(rng, small)
    n, m = rng.randint(2, 6), rng.randint(2, max(3, small[1] // 3))
    out: list[list] = [["add", k], ["add_groups", n, m]]
    if k < value:
        out.append(["sub", k])
    if n * m < value:
        out.append(["sub_groups", n, m])
    if value * 3 < MAX_VALUE:
        out.append(["mul", rng.choice([2, 3])])
    if value % 2 == 0 and value >= 4:
        out.append(["half"])
    divisors = [d for d in range(3, 10) if value % d == 0 and value // d >= 2]
    if divisors:
        out.append(["share", rng.choice(divisors)])
    return out


def narrate(event: list, person: tuple[str, str, str], thing: tuple[str, str, str],
            rng: random.Random) -> tuple[str, str]:
    """(story sentence, worked-step explanation without the arithmetic result)."""
    name, he, his = person
    _, things, containers = thing
    kind, *args = event
    friend = rng.choice(FRIENDS)
    if kind == "add":
        return rng.choice([f"{he.capitalize()} buys {args[0]} more {things}.",
                           f"Then {friend} gives {name} {args[0]} {things}.",
                           f"{he.capitalize()} finds {args[0]} more {things}."]), f"gets {args[0]} more"
    if kind == "sub":
        return rng.choice([f"{he.capitalize()} gives {args[0]} {things} to {friend}.",
                           f"Then {he} loses {args[0]} {things}.",
                           f"{he.capitalize()} uses {args[0]} of {his} {things}."]), f"loses {args[0]}"
    if kind == "add_groups":
        return (f"{he.capitalize()} buys {args[0]} {containers} of {things} with {args[1]} {things} in each.",
                f"gets {args[0]} {containers} of {args[1]}, that is "
                f"{args[0]} * {args[1]} = {args[0] * args[1]} more")
    if kind == "sub_groups":
        group = rng.choice(GROUPS)
        return (f"{he.capitalize()} gives {args[0]} {group} {args[1]} {things} each.",
                f"gives away {args[0]} * {args[1]} = {args[0] * args[1]}")
    if kind == "mul":
        word = {2: "doubles", 3: "triples"}[args[0]]
        many = {2: "twice", 3: "three times"}[args[0]]
        return (f"Then the number of {things} {name} has {word}.",
                f"now has {many} as many, so multiply by {args[0]}")
    if kind == "half":
        return (f"{he.capitalize()} gives half of {his} {things} to {friend}.",
                "gives away half, so divide by 2")
    if kind == "share":
        return (f"{he.capitalize()} splits {his} {things} equally into {args[0]} piles and keeps one pile.",
                f"keeps one of {args[0]} equal piles, so divide by {args[0]}")
    raise ValueError(kind)


def arithmetic(value: int, event: list) -> str:
    """"14 + 18 = 32": the one operation an event applies to the running quantity."""
    kind, *args = event
    if kind in ("add", "sub"):
        change = f"{'+' if kind == 'add' else '-'} {args[0]}"
    elif kind in ("add_groups", "sub_groups"):
        change = f"{'+' if kind == 'add_groups' else '-'} {args[0] * args[1]}"
    elif kind in ("mul", "sell"):
        change = f"* {args[0]}"
    else:
        change = f"/ {2 if kind == 'half' else args[0]}"
    return f"{value} {change} = {apply_event(value, event)}"


class WordProblems(Task):
    name = "word_problems"
    summary = "chained multi-step word problems about one quantity"
    hardness = ("steps", "chain", "numbers", "max_value_digits")

    def build(self, rng: random.Random, tier: int) -> Problem:
        chain_range, start_range, small = TIER_TABLE[tier]
        chain = ranged(rng, chain_range)
        person, thing = rng.choice(PEOPLE), rng.choice(THINGS)
        name, he, his = person
        unit, things, _ = thing
        start = ranged(rng, start_range)
        sell = tier >= 1 and rng.random() < 0.3
        value, events, sentences, steps = start, [], [f"{name} has {start} {things}."], []
        for i in range(chain - (1 if sell else 0)):
            event = rng.choice(possible_events(rng, value, small))
            sentence, why = narrate(event, person, thing, rng)
            sentences.append(sentence)
            steps.append(f"Step {i + 1}: {name} {why}: {arithmetic(value, event)} {things}.")
            value = apply_event(value, event)
            events.append(event)
        if sell:
            price = rng.randint(2, 9)
            events.append(["sell", price])
            question = (f"{he.capitalize()} then sells all of {his} {things} for ${price} each. "
                        f"How many dollars does {name} get?")
            steps.append(f"Step {chain}: {name} sells {value} {things} at ${price} each: "
                         f"{arithmetic(value, events[-1])} dollars.")
            value = apply_event(value, events[-1])
        else:
            question = rng.choice([f"How many {things} does {name} have now?",
                                   f"How many {things} does {name} have at the end?"])
        steps.append(f"So the answer is {value}.")
        prompt = " ".join(sentences + [question])
        biggest = max([start] + [replay(start, events[: j + 1]) for j in range(len(events))])
        features = {"steps": len(events), "chain": len(events), "numbers": sum(len(e) for e in events),
                    "max_value_digits": len(str(biggest))}
        return Problem(prompt, steps, str(value), features, {"start": start, "events": events, "unit": unit})

    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        return parse_number(answer) == replay(int(meta["start"]), meta["events"])
