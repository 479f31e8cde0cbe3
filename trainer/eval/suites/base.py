"""What every suite returns, the options the runner passes, and the counting they share."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

GenerateFn = Callable[[list[str]], list[str]]


@dataclass
class Options:
    """Knobs the CLI and the in-training dev evals pass to every suite's ``run``."""

    limit: int | None = None  # items per dataset (see each suite)
    max_new_tokens: int | None = None  # None: the suite's default
    batch_size: int = 64
    workers: int = 2  # sandbox processes at a time (code)
    code_timeout_s: float = 30.0  # wall clock; CPU seconds decide (a busy machine is slow, not wrong)
    code_cpu_s: int = 10
    code_memory_mb: int = 1024
    arith_seed: int | None = None  # None: arith.HOLDOUT_SEED
    arith_tasks: tuple[str, ...] | None = None  # None: the plan's synthetic tasks, else ("arith",)
    progress: Callable[[str, int, int], None] | None = None  # (what, done, total)

    def tick(self, what: str) -> Callable[[int, int], None] | None:
        if self.progress is None:
            return None
        return lambda done, total: self.progress(what, done, total)


@dataclass
class SuiteResult:
    name: str
    status: str = "ok"  # ok | skipped
    metrics: dict[str, float | int] = field(default_factory=dict)
    reason: str = ""  # why skipped
    data: str = ""  # where the items came from
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)  # one per item, for audits
    items: dict[str, Any] = field(default_factory=dict)  # {"n", "sha256"} of the scored item ids

    def as_dict(self, with_records: bool = False) -> dict[str, Any]:
        out = asdict(self)
        if not with_records:
            out.pop("records")
        return out


def skipped(name: str, reason: str) -> SuiteResult:
    return SuiteResult(name=name, status="skipped", reason=reason)


def mean(flags: Iterable[bool | float]) -> float:
    values = [float(f) for f in flags]
    return sum(values) / len(values) if values else 0.0


def grouped_accuracy(records: list[dict[str, Any]], key: Callable[[dict], str], flag: str = "correct",
                     ) -> dict[str, float | int]:
    """``{"<group>/accuracy": ..., "<group>/n": ...}`` over records grouped by ``key``."""
    groups: dict[str, list[bool]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(bool(r[flag]))
    out: dict[str, float | int] = {}
    for g in sorted(groups):
        out[f"{g}/accuracy"] = mean(groups[g])
        out[f"{g}/n"] = len(groups[g])
    return out


class Timer:
    def __enter__(self) -> "Timer":
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0


def check_lengths(name: str, prompts: list, outputs: list) -> None:
    if len(outputs) != len(prompts):
        raise ValueError(f"{name}: generate_fn returned {len(outputs)} texts for {len(prompts)} prompts")


def run_generative(name: str, source: str, evaluate: Callable, max_new_tokens: int, ev, sources,
                   options: Options) -> SuiteResult:
    """Load a source's eval items, generate for them and score with ``evaluate`` (skipped, with
    the reason, when the data is missing): the CLI path of every generation suite."""
    from trainer.eval.datasets import DataMissing, load_items
    from trainer.eval.generation import text_generator

    try:
        items, where = load_items(source, sources, options.limit)
    except DataMissing as exc:
        return skipped(name, str(exc))
    generate_fn = text_generator(ev, options.max_new_tokens or max_new_tokens, batch_size=options.batch_size,
                                 progress=options.tick(f"{name} generate"))
    with Timer() as t:
        result = evaluate(items, generate_fn)
    result.data, result.seconds = where, t.seconds
    return result
