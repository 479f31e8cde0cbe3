"""Code: HumanEval and the MBPP test split, each completion run against its problem's tests in the
sandbox (own process group, wall-clock and CPU limits, memory limit, fresh directory, no network,
capped output; see trainer/eval/sandbox.py); pass@1 of the greedy completion.

A HumanEval completion is the body after the published prompt, cut at the Codex paper's stop
sequences (a new top-level ``def``/``class``/``if``/``print``/comment); an MBPP completion is a
whole program, cut at the first top-level ``assert``/``print(``/``if __name__`` (the model may go
on to write tests). Reference solutions pass through the same cut untouched (the oracle tests).
``--limit N``: the first N problems of each benchmark.
Metrics: ``pass@1`` (all problems), ``humaneval/pass@1``, ``mbpp/pass@1``, ``/n``, and the count
of each sandbox status (``status/timeout`` ...).
"""

from __future__ import annotations

from collections import Counter

from trainer.eval.datasets import DataMissing, DataSources, EvalItem
from trainer.eval.suites.base import GenerateFn, Options, SuiteResult, Timer, check_lengths, mean, skipped

NAME = "code"
MAX_NEW_TOKENS = 384
HUMANEVAL_STOPS = ("\ndef", "\nclass", "\nif", "\nprint", "\n#")
MBPP_STOPS = ("\nassert", "\nprint(", "\nif __name__", "\n```")
BENCHMARKS = ("humaneval", "mbpp")


def program_of(item: EvalItem, generation: str):
    """The task (program, judge) that checks ``generation`` for ``item``: the tests run in a
    judge process the program cannot reach."""
    from trainer.eval.code_exec import humaneval_task, mbpp_task
    from trainer.eval.generation import truncate_at

    if item.group == "humaneval":
        problem = {"prompt": item.prompt, "test": item.meta["test"], "entry_point": item.meta["entry_point"]}
        return humaneval_task(problem, truncate_at(generation, HUMANEVAL_STOPS))
    if item.group == "mbpp":
        return mbpp_task({**item.meta, "code": item.reference}, truncate_at(generation, MBPP_STOPS))
    raise ValueError(f"{item.id}: not a code item (group {item.group!r})")


def evaluate(items: list[EvalItem], generate_fn: GenerateFn, *, workers: int = 2, timeout_s: float = 10.0,
             cpu_s: int = 10, memory_mb: int = 1024, progress=None) -> SuiteResult:
    from trainer.eval.code_exec import execute_all

    prompts = [it.prompt for it in items]
    generations = generate_fn(prompts)
    check_lengths(NAME, prompts, generations)
    programs = [program_of(it, g) for it, g in zip(items, generations)]
    results = execute_all(programs, workers=workers, progress=progress, timeout_s=timeout_s, cpu_s=cpu_s,
                          memory_mb=memory_mb)
    records = [{"id": it.id, "benchmark": it.group, "generation": g, "status": r.status, "passed": r.passed,
                "detail": r.detail[:300], "seconds": round(r.seconds, 3)}
               for it, g, r in zip(items, generations, results)]
    metrics: dict[str, float | int] = {"pass@1": mean(r["passed"] for r in records), "n": len(records)}
    for bench in BENCHMARKS:
        mine = [r for r in records if r["benchmark"] == bench]
        if mine:
            metrics[f"{bench}/pass@1"] = mean(r["passed"] for r in mine)
            metrics[f"{bench}/n"] = len(mine)
    for status, n in sorted(Counter(r["status"] for r in records).items()):
        metrics[f"status/{status}"] = n
    return SuiteResult(NAME, metrics=metrics, records=records)


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    from trainer.eval.datasets import load_items
    from trainer.eval.generation import text_generator

    items, where, missing = [], [], []
    for bench in BENCHMARKS:
        try:
            got, src = load_items(bench, sources, options.limit)
        except DataMissing as exc:
            missing.append(str(exc))
            continue
        items += got
        where.append(f"{bench}: {src}")
    if not items:
        return skipped(NAME, "; ".join(missing))
    generate_fn = text_generator(ev, options.max_new_tokens or MAX_NEW_TOKENS, batch_size=options.batch_size,
                                 progress=options.tick("code generate"))
    with Timer() as t:
        result = evaluate(items, generate_fn, workers=options.workers, timeout_s=options.code_timeout_s,
                          cpu_s=options.code_cpu_s, memory_mb=options.code_memory_mb,
                          progress=options.tick("code execute"))
    result.data, result.seconds = "; ".join(where), t.seconds
    result.notes += [f"skipped part: {m}" for m in missing]
    return result
