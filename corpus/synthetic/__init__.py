"""Synthetic reasoning tasks: the corpus's embedded data, deterministic by seed, graded by checkers.

    TASKS[name].generate(rng, tier) -> Item(prompt, target "... #### answer", answer, features, meta)
    TASKS[name].check(meta, text)   -> bool       (recomputes from meta; never trusts meta["answer"])

    generate(task, count, tiers, seed): item i of a build uses its own rng, derived from
    sha256(seed, task, tier, i), and tier = tiers[i % len(tiers)]; so 2N items start with the
    same N items, and nothing depends on Python's salted hash() or on the order of generation.

Tasks: arith, word_problems, lists, counting, linear, derivations (worked solutions) and bits
(answer-only questions about a bit string, the HRM test bed; see docs/synthetic.md).
"""

from __future__ import annotations

import hashlib
import random
from typing import Iterable, Iterator

from corpus.synthetic.arithmetic import Arithmetic
from corpus.synthetic.bits import Bits
from corpus.synthetic.base import TIERS, Item, Task, extract_answer, parse_number
from corpus.synthetic.counting import Counting
from corpus.synthetic.derivations import Derivations
from corpus.synthetic.linear_equations import LinearEquations
from corpus.synthetic.list_algorithms import ListAlgorithms
from corpus.synthetic.word_problems import WordProblems

GENERATOR_VERSION = 1  # bump when any task's output changes for the same (seed, task, tier, i)

TASKS: dict[str, Task] = {task.name: task for task in (
    Arithmetic(), WordProblems(), ListAlgorithms(), Counting(), LinearEquations(), Derivations(), Bits())}
# the worked-solution tasks; the tokenizer's synthetic corpus samples these only, so adding the
# answer-only test bed (bits) changed no tokenizer
REASONING_TASKS: tuple[str, ...] = ("arith", "word_problems", "lists", "counting", "linear", "derivations")

__all__ = ["GENERATOR_VERSION", "REASONING_TASKS", "TASKS", "TIERS", "Item", "Task", "check", "extract_answer",
           "generate", "item_rng", "iter_items", "parse_number", "parse_tiers"]


def item_rng(seed: int, task: str, tier: int, index: int) -> random.Random:
    """The private rng of one item, derived by sha256 so it is stable across runs and machines."""
    digest = hashlib.sha256(f"hrm-synthetic:{seed}:{task}:{tier}:{index}".encode()).digest()
    return random.Random(int.from_bytes(digest[:16], "big"))


def parse_tiers(spec: str | int | Iterable[int]) -> tuple[int, ...]:
    """"0-3" -> (0, 1, 2, 3); "0,2" -> (0, 2); 1 -> (1,); also mixes like "0,2-3"."""
    if isinstance(spec, int):
        parts: list[int] = [spec]
    elif isinstance(spec, str):
        parts = []
        for piece in spec.replace(" ", "").split(","):
            if not piece:
                raise ValueError(f"empty tier in {spec!r}")
            low, _, high = piece.partition("-")
            if not low.isdigit() or (high and not high.isdigit()):
                raise ValueError(f"tiers must look like '0-3' or '0,2', got {spec!r}")
            parts.extend(range(int(low), int(high or low) + 1))
    else:
        parts = [int(t) for t in spec]
    tiers = tuple(sorted(set(parts)))
    bad = [t for t in tiers if t not in TIERS]
    if not tiers or bad:
        raise ValueError(f"tiers must be within {TIERS[0]}-{TIERS[-1]}, got {spec!r}")
    return tiers


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise KeyError(f"unknown synthetic task {name!r}; known: {', '.join(TASKS)}")
    return TASKS[name]


def iter_items(task: str, count: int, tiers: str | Iterable[int] = TIERS, seed: int = 0,
               start: int = 0, impl: Task | None = None) -> Iterator[Item]:
    """Items ``start .. count-1`` of the (task, tiers, seed) stream, lazily. ``impl``: a configured
    instance of the task to draw from instead of the registry's (``Bits(questions=...)``)."""
    impl, tiers = impl or get_task(task), parse_tiers(tiers)
    for i in range(start, count):
        tier = tiers[i % len(tiers)]
        yield impl.generate(item_rng(seed, task, tier, i), tier, native_id=f"{task}-s{seed}-t{tier}-{i:07d}")


def generate(task: str, count: int, tiers: str | Iterable[int] = TIERS, seed: int = 0) -> list[Item]:
    return list(iter_items(task, count, tiers, seed))


def check(item: Item, answer: str) -> bool:
    """Grade ``answer`` (bare or free text ending in ``#### x``) against ``item``."""
    return get_task(item.task).check(item.meta, answer)
