"""``synthetic:<task>`` sources: the embedded generators of :mod:`corpus.synthetic` as sources.

No ``--from`` and no download: ``records()`` generates ``--count`` items over ``--tiers`` from the
build's ``--seed``; ``normalize()`` only repackages an item. The tier is the generator's level,
stored as ``features["level"]`` beside the task's raw measures (steps, digits, length...).

    python -m corpus.build synthetic:arith --count 20000 --tiers 0-3 --seed 0
"""

from __future__ import annotations

import argparse
from typing import Any, Iterator, Mapping

from corpus.errors import UserError
from corpus.sources.base import Example, RawRecord, Source, TierRule
from corpus.synthetic import GENERATOR_VERSION, TASKS, TIERS, Item, iter_items, parse_tiers
from corpus.synthetic.bits import QUESTIONS, Bits, parse_questions

DEFAULT_COUNT = 10_000


def _level(features: Mapping[str, float | int]) -> int:
    return int(features["level"])


LEVEL_RULE = TierRule("synthetic-level", 1, max(TIERS), _level,
                      "tier = features['level'] (the generator's own tier)")


def _tiers_arg(text: str) -> tuple[int, ...]:
    try:
        return parse_tiers(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class SyntheticSource(Source):
    """One generated task; subclasses (below, one per task) only set ``name`` and ``task``."""

    task: str
    tier_rule = LEVEL_RULE
    reads_hub = False

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        group = parser.add_argument_group(f"{cls.name}: {TASKS[cls.task].summary}")
        group.add_argument("--count", type=int, default=DEFAULT_COUNT,
                           help=f"items to generate (default: {DEFAULT_COUNT})")
        group.add_argument("--tiers", type=_tiers_arg, default=TIERS,
                           help="tiers to generate, e.g. '0-3' or '0,2' (default: 0-3); round-robin")

    def _settings(self) -> tuple[int, tuple[int, ...], int]:
        count = getattr(self.args, "count", DEFAULT_COUNT)
        tiers = getattr(self.args, "tiers", TIERS)
        seed = getattr(self.args, "seed", 0) or 0
        if count is None or count < 1:
            raise UserError(f"{self.name}: --count must be at least 1, got {count}")
        return count, parse_tiers(tiers), int(seed)

    def options(self) -> dict[str, Any]:
        count, tiers, seed = self._settings()
        return {"task": self.task, "count": count, "tiers": list(tiers), "seed": seed,
                "generator_version": GENERATOR_VERSION}

    def records(self, paths: list[str] | None, split: str, limit: int | None) -> Iterator[RawRecord]:
        if paths:
            raise UserError(f"{self.name} generates its data; it takes no --from")
        count, tiers, seed = self._settings()
        if limit is not None:
            count = min(count, limit)
        for item in iter_items(self.task, count, tiers, seed, impl=self._task_impl()):
            yield RawRecord(f"{self.name}#{item.native_id}", item)

    def _task_impl(self):
        """A configured task instance to draw from, or None for the registry's (a task with options)."""
        return None

    def normalize(self, record: RawRecord) -> Example:
        item: Item = record.data
        return Example(native_id=item.native_id, prompt=item.prompt, target=item.target,
                       meta=dict(item.meta), features=dict(item.features))


def _class_name(task: str) -> str:
    return "Synthetic" + "".join(part.capitalize() for part in task.split("_"))


SOURCES: dict[str, type[Source]] = {}
for _task in TASKS:
    # Real module attributes, so spawned build workers can unpickle them by name.
    _cls = type(_class_name(_task), (SyntheticSource,), {
        "name": f"synthetic:{_task}", "task": _task, "__module__": __name__,
        "__doc__": f"synthetic:{_task} - {TASKS[_task].summary}.",
    })
    globals()[_cls.__name__] = _cls
    SOURCES[_cls.name] = _cls
del _task, _cls


class SyntheticBits(SOURCES["synthetic:bits"]):  # type: ignore[misc,valid-type]
    """synthetic:bits - with ``--questions``: which questions the training items ask."""

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--questions", default="all",
                            help=f"comma-separated, some of {', '.join(QUESTIONS)} (default: all)")

    def _questions(self) -> tuple[str, ...]:
        try:
            return parse_questions(getattr(self.args, "questions", None))
        except ValueError as exc:
            raise UserError(f"{self.name}: --questions: {exc}") from None

    def options(self) -> dict[str, Any]:
        return {**super().options(), "questions": list(self._questions())}

    def _task_impl(self) -> Bits:
        return Bits(self._questions())


SOURCES[SyntheticBits.name] = SyntheticBits


def synthetic_source_names() -> list[str]:
    return sorted(SOURCES)
