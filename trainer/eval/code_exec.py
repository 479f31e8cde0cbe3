"""Code-generation scoring: build the program for a problem, run it in the sandbox, count passes.

    HumanEval:  prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"
    MBPP:       code + "\\n" + test_setup_code + "\\n" + "\\n".join(test_list)   (asserts)

Problems are plain dicts with the datasets' own field names (HumanEval: ``task_id``, ``prompt``,
``entry_point``, ``test``; MBPP: ``task_id``, ``test_setup_code``, ``test_list``, optionally
``challenge_test_list``). A HumanEval completion is the function body that follows the prompt, as
in the original benchmark; an MBPP completion is a whole program defining the function.

A program passes when it runs to its end: every assert held and nothing raised, inside the
sandbox's limits (``sandbox.run_python``). ``execute_all`` runs many programs concurrently
(each run is a separate process; the threads only wait on them).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from math import comb
from typing import Any, Callable, Iterable, Mapping, Sequence

from trainer.eval.sandbox import SandboxResult, run_python

__all__ = [
    "MBPP_TEST_IDS",
    "humaneval_program",
    "mbpp_program",
    "execute_all",
    "check_humaneval",
    "check_mbpp",
    "pass_at_1",
    "pass_at_k",
]

# MBPP's split by task id (mbpp/README.md): 1-10 few-shot prompts, 11-510 test, 511-600 validation,
# 601-974 train.
MBPP_TEST_IDS = range(11, 511)


def _lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def humaneval_program(problem: Mapping[str, Any], completion: str) -> str:
    """The program that checks a HumanEval completion (the function body after ``prompt``)."""
    return (
        _lf(problem["prompt"])
        + _lf(completion)
        + "\n\n"
        + _lf(problem["test"])
        + "\n\n"
        + f"check({problem['entry_point']})\n"
    )


def mbpp_program(problem: Mapping[str, Any], code: str, *, challenge: bool = False) -> str:
    """The program that checks MBPP code: the code, the test setup, then the problem's asserts.

    The setup goes after the code because it builds test fixtures from the solution's own
    definitions (task 367 builds trees with the solution's ``Node`` class); it runs before the
    asserts all the same. ``challenge=True`` appends ``challenge_test_list`` (11 problems have one).
    """
    tests = list(problem["test_list"])
    if challenge:
        tests += list(problem.get("challenge_test_list") or [])
    parts = [_lf(code), _lf(problem.get("test_setup_code") or ""), *(_lf(t) for t in tests)]
    return "\n".join(part for part in parts if part.strip()) + "\n"


def execute_all(
    programs: Sequence[str],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **limits: Any,
) -> list[SandboxResult]:
    """Run every program in its own sandbox, ``workers`` at a time; results in input order.

    ``limits`` go to :func:`sandbox.run_python` (``timeout_s``, ``memory_mb``, ...).
    ``progress(done, total)`` is called after each program finishes.
    """
    workers = workers or max(1, os.cpu_count() or 1)
    results: list[SandboxResult | None] = [None] * len(programs)
    done = 0

    def run(index: int) -> int:
        results[index] = run_python(programs[index], **limits)
        return index

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        for _ in pool.map(run, range(len(programs))):
            done += 1
            if progress is not None:
                progress(done, len(programs))
    return [r for r in results if r is not None]


def check_humaneval(problem: Mapping[str, Any], completion: str, **limits: Any) -> SandboxResult:
    """Run one HumanEval completion against its problem's tests."""
    return run_python(humaneval_program(problem, completion), **limits)


def check_mbpp(problem: Mapping[str, Any], code: str, **limits: Any) -> SandboxResult:
    """Run one MBPP solution against its problem's asserts."""
    return run_python(mbpp_program(problem, code), **limits)


def pass_at_1(results: Iterable[SandboxResult | bool]) -> float:
    """The fraction of problems whose (single, greedy) sample passed."""
    flags = [r if isinstance(r, bool) else r.passed for r in results]
    if not flags:
        raise ValueError("pass_at_1 of no results")
    return sum(flags) / len(flags)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem from ``n`` samples of which ``c`` passed (Chen et al. 2021).

    ``1 - C(n-c, k) / C(n, k)``; average it over problems.
    """
    if not 0 <= c <= n or k < 1 or k > n:
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n} c={c} k={k}")
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)
