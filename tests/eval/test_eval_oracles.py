"""Oracle tests on the real public benchmarks: reference answers score full marks, wrong ones 0.

Code problems run in the real sandbox, two at a time. Limits: CPU seconds, not wall time, decide
(``cpu_s``), so that the verdict does not depend on how busy the machine is; the wall clock is a
generous backstop. MBPP task 123 (amicable numbers below 9,999) needs about 3 CPU seconds.
"""

from __future__ import annotations

import ast
import re
import warnings
from fractions import Fraction

import pytest

from trainer.eval.answers import choice_letter, extract_final_number, format_number, gsm8k_correct, parse_choice
from trainer.eval.code_exec import execute_all, humaneval_task, mbpp_task, pass_at_1
from trainer.eval.text_metrics import bleu, choice_accuracy, rouge_l

pytestmark = pytest.mark.shared_data

LIMITS = {"timeout_s": 60.0, "cpu_s": 10, "memory_mb": 1024}
WORKERS = 2

# MBPP test-split problems whose reference solution does not pass its own asserts here, with the
# reason. Empty on purpose: all 500 pass once test_setup_code runs after the solution (task 367's
# setup builds trees with the solution's Node class) and limits are CPU time (task 123 is slow).
# A new entry needs a reason; the test fails on any failure not listed here.
KNOWN_MBPP_EXCEPTIONS: dict[int, str] = {}


# --- GSM8K -----------------------------------------------------------------------------------

def _final(answer: str) -> str:
    return answer.rsplit("####", 1)[1].strip()


def test_gsm8k_reference_answers_score_100(gsm8k_test):
    assert len(gsm8k_test) == 1319
    assert all(gsm8k_correct(row["answer"], row["answer"]) for row in gsm8k_test)
    # The extracted value is the published one ("1,450,000" included).
    for row in gsm8k_test:
        assert extract_final_number(row["answer"]) == int(_final(row["answer"]).replace(",", ""))


def test_gsm8k_reference_restated_without_marker_scores_100(gsm8k_test):
    """The worked solution with its '#### N' line restated the ways models write answers."""
    styles = [
        "The answer is {n}.",
        "So she makes ${money} every day.",
        "Final answer: {n_float}",
        "That is {n} dollars in total.",
        "The result is {n}%.",
        "**{money}**",
    ]
    correct = 0
    for i, row in enumerate(gsm8k_test):
        body = row["answer"].rsplit("####", 1)[0].rstrip()
        value = int(_final(row["answer"]).replace(",", ""))
        text = styles[i % len(styles)].format(n=value, money=f"{value:,}", n_float=f"{value:.2f}")
        correct += gsm8k_correct(body + "\n" + text, row["answer"])
    assert correct == len(gsm8k_test)


def test_gsm8k_wrong_answers_score_0(gsm8k_test):
    wrong = 0
    for row in gsm8k_test:
        value = Fraction(int(_final(row["answer"]).replace(",", "")))
        body = row["answer"].rsplit("####", 1)[0]
        wrong += gsm8k_correct(f"{body}#### {format_number(value + 1)}", row["answer"])
        wrong += gsm8k_correct(f"{body}The answer is {format_number(value / 2 if value else 7)}.", row["answer"])
    assert wrong == 0


# --- code ------------------------------------------------------------------------------------

# A wrong answer that does all the work of the right one and then returns a nearby wrong value,
# so that the asserts, not a crash, must catch it.
_PERTURB = '''

def _hrm_wrong(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float, complex)):
        return value + 1
    if isinstance(value, str):
        return value + "?"
    if isinstance(value, list):
        return value + [None]
    if isinstance(value, tuple):
        return value + (None,)
    if value is None:
        return 0
    return object()


def _hrm_perturb(fn):
    def wrong(*args, **kwargs):
        return _hrm_wrong(fn(*args, **kwargs))
    return wrong
'''


def _humaneval_wrong(problem: dict) -> str:
    name = problem["entry_point"]
    return problem["canonical_solution"] + _PERTURB + f"\n{name} = _hrm_perturb({name})\n"


def _mbpp_wrong(problem: dict) -> str:
    code = problem["code"].replace("\r\n", "\n")
    tests = "\n".join(problem["test_list"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # some solutions have "\w" in plain strings
        tree = ast.parse(code)
    tested = [node.name for node in tree.body
              if isinstance(node, ast.FunctionDef) and re.search(rf"\b{node.name}\s*\(", tests)]
    assert tested, f"MBPP {problem['task_id']}: no tested function found"
    return code + _PERTURB + "".join(f"\n{name} = _hrm_perturb({name})\n" for name in tested)


def _failures(problems, results, key):
    return {p[key]: f"{r.status}: {r.detail}" for p, r in zip(problems, results) if not r.passed}


def test_humaneval_canonical_solutions_pass_all(humaneval_problems):
    assert len(humaneval_problems) == 164
    programs = [humaneval_task(p, p["canonical_solution"]) for p in humaneval_problems]
    results = execute_all(programs, workers=WORKERS, **LIMITS)
    assert _failures(humaneval_problems, results, "task_id") == {}
    assert pass_at_1(results) == 1.0


def test_humaneval_wrong_completions_score_0(humaneval_problems):
    programs = [humaneval_task(p, _humaneval_wrong(p)) for p in humaneval_problems]
    results = execute_all(programs, workers=WORKERS, **LIMITS)
    assert [p["task_id"] for p, r in zip(humaneval_problems, results) if r.passed] == []
    assert pass_at_1(results) == 0.0
    # Caught by the tests' asserts, not by a crash of the harness.
    assert {r.status for r in results} == {"failed"}


def test_mbpp_reference_solutions_pass(mbpp_test_problems):
    assert [p["task_id"] for p in mbpp_test_problems] == list(range(11, 511))
    programs = [mbpp_task(p, p["code"]) for p in mbpp_test_problems]
    results = execute_all(programs, workers=WORKERS, **LIMITS)
    failures = _failures(mbpp_test_problems, results, "task_id")
    unexplained = {tid: why for tid, why in failures.items() if tid not in KNOWN_MBPP_EXCEPTIONS}
    assert unexplained == {}
    assert pass_at_1(results) >= 0.95
    assert pass_at_1(results) == (500 - len(failures)) / 500


def test_mbpp_wrong_solutions_score_0(mbpp_test_problems):
    # Every fourth problem (125), to keep the file fast on two shared cores; all 500 were checked
    # once when this was written (0 passed: 496 failed an assert, 4 raised).
    problems = [p for p in mbpp_test_problems if p["task_id"] % 4 == 0]
    assert len(problems) == 125
    programs = [mbpp_task(p, _mbpp_wrong(p)) for p in problems]
    results = execute_all(programs, workers=WORKERS, **LIMITS)
    assert [p["task_id"] for p, r in zip(problems, results) if r.passed] == []
    assert pass_at_1(results) == 0.0
    assert {r.status for r in results} <= {"failed", "error"}


# --- ScienceQA -------------------------------------------------------------------------------

_RENDERINGS = [
    "The answer is ({letter}).",
    "Answer: {letter}",
    "{letter}",
    "({letter}) {choice}",
    "{letter}) {choice}",
    "Solution: {solution}\nThe answer is {letter}.",
    "The answer is {choice}.",
]


def test_scienceqa_reference_letters_score_100(scienceqa_test):
    assert len(scienceqa_test) == 50
    answers = [p["answer"] for p in scienceqa_test]
    for rendering in _RENDERINGS:
        predictions = [
            parse_choice(
                rendering.format(letter=choice_letter(p["answer"]), choice=p["choices"][p["answer"]], solution=p["solution"]),
                choices=p["choices"],
            )
            for p in scienceqa_test
        ]
        assert choice_accuracy(predictions, answers) == 1.0, rendering


def test_scienceqa_wrong_letters_score_0(scienceqa_test):
    answers = [p["answer"] for p in scienceqa_test]
    for rendering in _RENDERINGS:
        predictions = []
        for p in scienceqa_test:
            wrong = (p["answer"] + 1) % len(p["choices"])
            text = rendering.format(letter=choice_letter(wrong), choice=p["choices"][wrong], solution=p["solution"])
            predictions.append(parse_choice(text, choices=p["choices"]))
        assert choice_accuracy(predictions, answers) == 0.0, rendering


def test_scienceqa_rationale_metrics(scienceqa_test):
    """Reference rationales score 100 against themselves; another problem's rationale scores low."""
    refs = [p["solution"] for p in scienceqa_test if p["solution"].strip()]
    assert len(refs) >= 40
    assert bleu(refs, refs) == pytest.approx(1.0)
    assert rouge_l(refs, refs) == pytest.approx(1.0)
    shifted = refs[1:] + refs[:1]
    assert bleu(shifted, refs) < 0.25
    assert rouge_l(shifted, refs) < 0.40
    # A partly right rationale lands in between.
    halves = [" ".join(r.split()[: max(1, len(r.split()) // 2)]) for r in refs]
    assert bleu(shifted, refs) < bleu(halves, refs) < 1.0
    assert rouge_l(shifted, refs) < rouge_l(halves, refs) < 1.0
