"""Suites' oracle path: reference answers fed through the same loaders and ``evaluate`` code the CLI
runs (only ``generate_fn`` differs) score full marks, wrong answers score 0.

The data comes from the shared benchmark files through the corpus sources' own normalize, as
``python -m trainer.eval`` reads them (``--eval-data``); tests skip when the files are absent.
"""

from __future__ import annotations

import re
from fractions import Fraction

import pytest

from tests.eval.conftest import SHARED_DATA, data_file
from trainer.eval.answers import extract_final_number, format_number
from trainer.eval.datasets import DataMissing, DataSources, EvalItem, load_items
from trainer.eval.suites import arith, code, gsm8k, science_qa
from trainer.eval.suites.base import Options

LIMITS = {"timeout_s": 60.0, "cpu_s": 10, "memory_mb": 1024}  # CPU time decides, as in the scorer oracles


def oracle(items: list[EvalItem], answer=lambda it: it.reference):
    """A ``generate_fn`` that checks it is asked the items' prompts, in order, and answers ``answer``."""
    calls = []

    def generate_fn(prompts: list[str]) -> list[str]:
        assert prompts == [it.prompt for it in items]
        calls.append(len(prompts))
        return [answer(it) for it in items]

    generate_fn.calls = calls
    return generate_fn


def raw(name: str) -> DataSources:
    from trainer.eval.datasets import RAW_LAYOUT

    data_file(*RAW_LAYOUT[name].split("/"))
    return DataSources(raw_dir=SHARED_DATA)


# --- GSM8K -----------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_gsm8k_references_score_100_and_wrong_answers_0():
    items, where = load_items("gsm8k", raw("gsm8k"))
    assert len(items) == 1319 and where.endswith("gsm8k/test.jsonl")
    assert items[0].prompt.startswith("Janet") and items[0].reference.endswith("#### 18")
    result = gsm8k.evaluate(items, oracle(items))
    m = result.metrics
    assert m["lenient_accuracy"] == m["lm_eval_strict_match"] == m["lm_eval_flexible_extract"] == 1.0
    assert m["n"] == 1319 and m["answered"] == 1.0
    tiers = {k: v for k, v in result.metrics.items() if re.fullmatch(r"tier\d/lenient_accuracy", k)}
    assert len(tiers) == 4 and set(tiers.values()) == {1.0}
    assert sum(result.metrics[f"tier{t}/n"] for t in range(4)) == 1319

    def off_by_one(it):
        body, _, final = it.reference.rpartition("####")
        return f"{body}#### {format_number(Fraction(final.strip().replace(',', '')) + 1)}"

    wrong = gsm8k.evaluate(items, oracle(items, off_by_one))
    assert wrong.metrics["lenient_accuracy"] == wrong.metrics["lm_eval_strict_match"] == 0.0
    assert wrong.metrics["lm_eval_flexible_extract"] == 0.0 and wrong.metrics["answered"] == 1.0
    # without '####' the last number counts: the work restated with the right total is right
    restated = gsm8k.evaluate(items[:50], oracle(items[:50], lambda it: it.reference.rpartition("####")[0]
                                                  + f"So the answer is ${extract_final_number(it.reference)}."))
    assert restated.metrics["lenient_accuracy"] == restated.metrics["lm_eval_flexible_extract"] == 1.0
    assert restated.metrics["lm_eval_strict_match"] == 0.0  # no "#### N": strict-match finds nothing


def test_gsm8k_from_a_path_and_missing_data(tmp_path):
    path = tmp_path / "mini.jsonl"
    path.write_text('{"question": "What is 2 + 3?", "answer": "2 + 3 = 5\\n#### 5"}\n'
                    '{"question": "bad", "answer": "no final line"}\n')
    items, where = load_items("gsm8k", DataSources(paths={"gsm8k": [str(path)]}))
    assert [(it.prompt, it.reference) for it in items] == [("What is 2 + 3?", "2 + 3 = 5\n#### 5")]
    assert where == f"--from {path}"
    result = gsm8k.evaluate(items, oracle(items, lambda it: "The answer is 5 apples."))
    assert result.metrics["lenient_accuracy"] == 1.0 and result.records[0]["predicted"] == "5"
    with pytest.raises(DataMissing, match="no gsm8k evaluation data"):
        load_items("gsm8k", DataSources(raw_dir=tmp_path))


# --- code ------------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_code_references_pass_and_wrong_programs_fail():
    humaneval, _ = load_items("humaneval", raw("humaneval"))
    mbpp, _ = load_items("mbpp", raw("mbpp"))
    assert len(humaneval) == 164 and len(mbpp) == 500
    assert {it.meta["task_id"] for it in mbpp} == set(range(11, 511))
    items = humaneval[::14] + mbpp[::42]  # 12 + 12 problems spread over both sets
    result = code.evaluate(items, oracle(items), workers=2, **LIMITS)
    m = result.metrics
    assert (m["humaneval/pass@1"], m["mbpp/pass@1"], m["pass@1"]) == (1.0, 1.0, 1.0)
    assert (m["humaneval/n"], m["mbpp/n"], m["status/passed"]) == (12, 12, 24)

    def wrong(it):  # runs, but returns nothing useful: the asserts must catch it
        if it.group == "humaneval":
            return "    return None\n"
        return f"def {it.meta['entry_point']}(*args):\n    return None\n"

    failed = code.evaluate(items, oracle(items, wrong), workers=2, **LIMITS)
    assert failed.metrics["pass@1"] == 0.0 and failed.metrics.get("status/passed", 0) == 0
    assert {r["status"] for r in failed.records} <= {"failed", "error"}


def test_code_completion_is_cut_at_stop_sequences():
    item = EvalItem("humaneval:x", "def f(x):\n    \"\"\"Double.\"\"\"\n", "", group="humaneval",
                    meta={"test": "def check(c):\n    assert c(2) == 4\n", "entry_point": "f"})
    rambling = "    return 2 * x\n\ndef g():\n    raise SystemExit(3)\n\nprint(g())\n"
    program, judge = code.program_of(item, rambling)
    assert "def g" not in program and "print(g())" not in program and program.count("return 2 * x") == 1
    assert "assert c(2) == 4" in judge.checks and "assert" not in program  # the tests stay with the judge
    mb = EvalItem("mbpp:1", "p", "", group="mbpp", meta={"test_list": ["assert f(2) == 4"], "test_setup_code": ""})
    program, judge = code.program_of(mb, "def f(x):\n    return 2 * x\nassert f(1) == 3\n")
    assert program == "def f(x):\n    return 2 * x\n" and judge.checks == "assert f(2) == 4\n"


# --- ScienceQA -------------------------------------------------------------------------------

@pytest.mark.shared_data
def test_scienceqa_references_score_100_and_wrong_letters_0():
    items, _ = load_items("science_qa", raw("science_qa"))
    assert len(items) == 50 and all(it.meta["split"] == "test" for it in items)
    result = science_qa.evaluate(items, oracle(items))
    m = result.metrics
    with_rationale = sum(bool(science_qa.rationale_of(it.reference)) for it in items)
    assert m["accuracy"] == 1.0 and m["parsed"] == 1.0 and m["n"] == 50
    assert m["n_rationale"] == with_rationale == 50  # every test problem has a lecture or a solution
    assert m["bleu"] == pytest.approx(1.0) and m["rouge_l"] == pytest.approx(1.0)

    def wrong_letter(it):
        n = len(it.meta["choices"])
        return science_qa.rationale_of(it.reference) + f"\n\nThe answer is ({'ABCDE'[(it.meta['answer_index'] + 1) % n]})."

    some = items[::3]  # ROUGE-L of long lectures is slow in pure Python: a third is enough here
    wrong = science_qa.evaluate(some, oracle(some, wrong_letter))
    assert wrong.metrics["accuracy"] == 0.0 and wrong.metrics["bleu"] == pytest.approx(1.0)
    unrelated = science_qa.evaluate(some, oracle(some, lambda it: "Paris is a city. The answer is (A)."))
    assert unrelated.metrics["bleu"] < 0.05 and unrelated.metrics["rouge_l"] < 0.20


def test_rationale_is_the_text_before_the_last_answer_statement():
    text = "Lecture: the answer is not always obvious.\n\nSolution: ice melts.\n\nThe answer is (B)."
    assert science_qa.rationale_of(text) == "Lecture: the answer is not always obvious.\n\nSolution: ice melts."
    assert science_qa.rationale_of("No statement here.") == "No statement here."


# --- arithmetic holdout ----------------------------------------------------------------------

ALL_TASKS = ("arith", "word_problems", "lists", "counting", "linear", "derivations")


def test_arith_holdout_references_score_100_per_tier_and_wrong_answers_0():
    items, counts, notes = arith.build_items(DataSources(), Options(limit=8, arith_tasks=ALL_TASKS))
    assert len(items) == 6 * 8 and counts["seed"] == arith.HOLDOUT_SEED and counts["overlap_checked"] == 0
    assert any("overlap with training not checked" in n for n in notes)
    result = arith.evaluate(items, oracle(items))
    cells = {k: v for k, v in result.metrics.items() if re.fullmatch(r"\w+/tier\d/accuracy", k)}
    assert len(cells) == 6 * 4 and set(cells.values()) == {1.0} and result.metrics["accuracy"] == 1.0

    by_task: dict[str, list[EvalItem]] = {}
    for it in items:
        by_task.setdefault(it.group, []).append(it)

    def others_answer(it):  # the work of this item, the final answer of the next one of its task
        same = by_task[it.group]
        other = next(o for o in same[same.index(it) + 1:] + same if o.meta["answer"] != it.meta["answer"])
        return it.reference.rpartition("####")[0] + f"#### {other.meta['answer']}"

    wrong = arith.evaluate(items, oracle(items, others_answer))
    assert wrong.metrics["accuracy"] == 0.0


def test_holdout_drops_prompts_seen_in_training_and_repeats():
    from corpus.synthetic import iter_items

    seen = {it.prompt for it in iter_items("arith", 2000, (0,), seed=0)}
    items, dropped, repeats = arith.holdout_items("arith", (0, 1), 60, arith.HOLDOUT_SEED, seen)
    assert [sum(it.tier == t for it in items) for t in (0, 1)] == [60, 60]
    assert dropped[0] >= 5 and not any(it.prompt in seen for it in items)
    assert len({it.prompt for it in items}) == len(items)
    # without the training prompts the holdout keeps them: the same stream, only repeats dropped
    plain, none_seen, plain_repeats = arith.holdout_items("arith", (0,), 60, arith.HOLDOUT_SEED, None)
    assert none_seen == {0: 0} and sum(p.prompt in seen for p in plain) >= 5
    drawn = [it.prompt for it in iter_items("arith", 60 + plain_repeats[0], (0,), seed=arith.HOLDOUT_SEED)]
    assert [it.prompt for it in plain] == list(dict.fromkeys(drawn))


def test_unknown_synthetic_task_is_an_error():
    options = Options(limit=4, arith_tasks=("nope",))
    with pytest.raises(ValueError, match="unknown synthetic task"):
        arith.build_items(DataSources(), options)
