"""The one interface every source implements (datatrove-style: small, with reasons on rejection).

A source turns raw records into normalized :class:`Example` objects. It never tokenizes, never
writes files and never touches the catalog: ``corpus.build`` does that for every source alike.

    records(args)  ->  RawRecord(ref, data)          where it came from, for quarantine messages
    normalize(rec) ->  Example | list[Example]       or raises BadRecord(reason, field)
    tier(features) ->  int                           the versioned difficulty rule (TierRule)
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, ClassVar, Iterable, Iterator, Mapping


@dataclass(frozen=True)
class RawRecord:
    """One input record and where it came from (``file:line``, ``file#row``, ``hub:split#row``)."""

    ref: str
    data: Any


@dataclass
class Example:
    """A normalized example, before tokenization.

    ``native_id`` is the source's own id; the stable row id is ``f"{source}:{native_id}"``.
    ``features`` are raw difficulty measurements (measure once, select many times); the tier is
    computed from them by the source's :class:`TierRule`. ``meta`` holds what evaluation needs
    (final answer, tests, entry point) and must be JSON-serializable.
    ``document=True`` marks plain text that the builder tokenizes and cuts into windows.
    """

    native_id: str
    prompt: str
    target: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    features: dict[str, float | int] = field(default_factory=dict)
    image: bytes | None = None
    image_width: int | None = None
    image_height: int | None = None
    document: bool = False


@dataclass(frozen=True)
class TierRule:
    """A named, versioned selection rule from stored features to a small-integer tier.

    ``features`` names the stored features the rule reads, so re-tiering can refuse rows that
    lack them instead of silently putting everything in tier 0.
    """

    name: str
    version: int
    max_tier: int
    fn: Callable[[Mapping[str, float | int]], int]
    doc: str = ""
    features: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.name}@v{self.version}"

    def __call__(self, features: Mapping[str, float | int]) -> int:
        tier = int(self.fn(features))
        return max(0, min(self.max_tier, tier))


def threshold_rule(name: str, version: int, feature: str, bounds: list[float], doc: str = "") -> TierRule:
    """Tier = number of ``bounds`` that ``features[feature]`` reaches (bounds ascending)."""

    def fn(features: Mapping[str, float | int]) -> int:
        value = features.get(feature, 0)
        return sum(1 for b in bounds if value >= b)

    return TierRule(name, version, len(bounds), fn, doc or f"tier = #{{b in {bounds} : {feature} >= b}}",
                    (feature,))


class Source:
    """Base class: subclasses set the class attributes and implement :meth:`normalize`.

    ``hub_id`` is the Hugging Face dataset id used when no ``--from`` is given (``hub_config`` its
    config name). ``role`` is ``"train"`` or ``"eval"`` (eval sources feed decontamination and the
    evaluation suite). ``requires_target`` makes an empty target a quarantine reason.
``windows`` marks sources of documents, cut into ``--max-seq-len`` windows when built; every
other source stores whole examples and the mix plan decides what a row longer than the run's
``max_seq_len`` becomes (docs/mixing.md, "Rows longer than max_seq_len").
    """

    name: ClassVar[str]
    hub_id: ClassVar[str | None] = None
    hub_config: ClassVar[str | None] = None
    role: ClassVar[str] = "train"
    requires_target: ClassVar[bool] = True
    windows: ClassVar[bool] = False  # documents cut into --max-seq-len windows at build time
    benchmark: ClassVar[bool] = False  # has an evaluation split that must stay out of training
    reads_hub: ClassVar[bool] = True  # False: generates its records (no --from, no hub)
    tier_rule: ClassVar[TierRule]

    def __init__(self, args: argparse.Namespace):
        self.args = args
        if getattr(args, "hub_dataset", None):  # --hub-dataset: another hub id or a local repository
            self.hub_id = args.hub_dataset

    @property
    def hub_revision(self) -> str | None:
        """The commit the build resolved (``--revision`` or the hub's ``main``) for hub reads."""
        return getattr(self.args, "resolved_revision", None) or getattr(self.args, "revision", None)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """Source-specific flags (e.g. ``--strip-calculator``). Default: none."""

    def options(self) -> dict[str, Any]:
        """Source-specific options that change the output; they enter the version id."""
        return {}

    def records(self, paths: list[str] | None, split: str, limit: int | None) -> Iterator[RawRecord]:
        """Raw records from ``--from`` paths, or from the hub when ``paths`` is None."""
        from corpus.loading import load_records

        return load_records(paths, split=split, hub_id=self.hub_id, hub_config=self.hub_config,
                            revision=self.hub_revision)

    def normalize(self, record: RawRecord) -> Example | Iterable[Example]:
        raise NotImplementedError

    def tier(self, features: Mapping[str, float | int]) -> int:
        return self.tier_rule(features)

    def is_eval_split(self, split: str) -> bool:
        """Whether ``--split split`` holds evaluation data (never to be trained on).

        A version built from such a split is registered with kind ``eval``; decontamination
        indexes those. Sources whose test split lives beside the training data override this.
        """
        return self.role == "eval"

    def registered_split(self, split: str) -> str:
        """The split an evaluation version built from ``--split split`` is registered as (its rows'
        split and its file names). A benchmark with one split overrides this to name it, so a build
        without ``--split`` does not register a test set as ``train``."""
        return split

    @classmethod
    def identity_texts(cls, prompt: str, target: str, meta: dict[str, Any]) -> list[str]:
        """The texts that make an evaluation item that item, indexed for decontamination. Default:
        its prompt and its target; a source whose items share stock text (ScienceQA's lectures)
        leaves that out, so sharing it is not contamination."""
        return [prompt, target]

    def count(self, name: str, n: int = 1) -> None:
        """Count an event worth reporting that is not a rejection (e.g. ``image missing``)."""
        self.__dict__.setdefault("_counters", Counter())[name] += n

    def take_counters(self) -> dict[str, int]:
        """The counts since the last call, then reset: the build sums them over its workers."""
        return dict(self.__dict__.pop("_counters", Counter()))
