"""The tiny interface every synthetic task implements, plus the helpers they share.

A task turns ``(rng, tier)`` into a :class:`Problem` (prompt, worked steps, answer, features,
meta); :meth:`Task.generate` wraps it into an :class:`Item` whose target is the steps followed by
a final ``#### <answer>`` line, GSM8K-style, so one extractor (:func:`extract_answer`) serves every
task and GSM8K alike. :meth:`Task.check` grades a candidate answer (bare or free text) from
``meta`` alone: it recomputes from the problem's parameters and never reads ``meta["answer"]``.
"""

from __future__ import annotations

import random
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, ClassVar

TIERS: tuple[int, ...] = (0, 1, 2, 3)


@dataclass(frozen=True)
class Problem:
    """What a task builds; :meth:`Task.generate` turns it into an :class:`Item`."""

    prompt: str
    steps: list[str]
    answer: str
    features: dict[str, int | float]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Item:
    """One generated example. ``features`` always holds ``level`` (= tier) and ``steps``."""

    native_id: str
    task: str
    tier: int
    prompt: str
    target: str
    answer: str
    features: dict[str, int | float]
    meta: dict[str, Any]


class Task(ABC):
    """A synthetic task: deterministic given the rng, harder with each tier, self-checking.

    ``hardness`` names the features whose per-tier mean strictly grows with the tier (the tests
    assert it); ``summary`` is a one-line description for docs and ``--help``. An ``answer_only``
    task's target is the bare answer (the model must compute it without writing steps).
    """

    name: ClassVar[str]
    summary: ClassVar[str]
    hardness: ClassVar[tuple[str, ...]]
    tiers: ClassVar[tuple[int, ...]] = TIERS
    answer_only: ClassVar[bool] = False  # True: the target is the bare answer, no steps, no "####"

    @abstractmethod
    def build(self, rng: random.Random, tier: int) -> Problem:
        """A fresh problem of this tier, drawing every random choice from ``rng``."""

    @abstractmethod
    def verify(self, meta: dict[str, Any], answer: str) -> bool:
        """Whether an extracted answer string is correct, recomputed from ``meta``."""

    def generate(self, rng: random.Random, tier: int, native_id: str = "") -> Item:
        if tier not in self.tiers:
            raise ValueError(f"{self.name}: tier {tier} not in {self.tiers}")
        problem = self.build(rng, tier)
        target = problem.answer if self.answer_only else "\n".join(problem.steps + [f"#### {problem.answer}"])
        features = {"steps": len(problem.steps), **problem.features, "level": tier}
        meta = {"task": self.name, "tier": tier, "answer": problem.answer, **problem.meta}
        for label, text in (("prompt", problem.prompt), ("target", target)):
            if not text or not text.isascii():
                raise AssertionError(f"{self.name}: {label} must be non-empty ASCII: {text!r}")
        return Item(native_id, self.name, tier, problem.prompt, target, problem.answer, features, meta)

    def check(self, meta: dict[str, Any], answer: str) -> bool:
        """Grade a bare answer or a whole generated text (the ``####`` line wins)."""
        extracted = extract_answer(answer)
        if extracted is None:
            return False
        try:
            return bool(self.verify(meta, extracted))
        except (ValueError, ArithmeticError, KeyError, IndexError, TypeError, RecursionError):
            return False


# --- answer extraction and parsing -------------------------------------------------------------

_ANSWER_IS = re.compile(r"(?:final answer|answer)\s*(?:is|:)\s*(.+)", re.IGNORECASE)


def extract_answer(text: str | None) -> str | None:
    """The final answer in free text: after the last ``####``, else after "answer is"/"Answer:",
    else the last non-empty line. Trailing periods are dropped. None when there is nothing."""
    if not text or not text.strip():
        return None
    if "####" in text:
        candidate = text.rsplit("####", 1)[1].strip().splitlines()
        candidate = candidate[0] if candidate else ""
    else:
        lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
        matches = [m for ln in lines for m in _ANSWER_IS.finditer(ln)]
        candidate = matches[-1].group(1) if matches else lines[-1]
    candidate = candidate.strip().rstrip(".").strip()
    return candidate or None


_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:\s*/\s*\d+)?")


def parse_number(text: str) -> Fraction:
    """The last number in ``text`` as an exact Fraction: "1,234", "-3", "$12.50", "7/2".

    Raises ValueError when there is none."""
    found = _NUMBER.findall(text.replace("\u2212", "-"))
    if not found:
        raise ValueError(f"no number in {text!r}")
    token = found[-1].replace(",", "").replace(" ", "")
    return Fraction(token)


def parse_int_list(text: str) -> list[int]:
    """Every integer in ``text``, in order: "[3, -1, 4]" -> [3, -1, 4]."""
    return [int(tok) for tok in re.findall(r"-?\d+", text)]


def ranged(rng: random.Random, bounds: tuple[int, int]) -> int:
    """rng.randint over an inclusive (low, high) pair: keeps tier tables readable."""
    return rng.randint(bounds[0], bounds[1])


def signed(value: int) -> str:
    """" + 5" / " - 5": how a term continues an expression."""
    return f" - {-value}" if value < 0 else f" + {value}"
