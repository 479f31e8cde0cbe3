"""Every task, every tier: answers pass their checker, wrong answers fail, tiers get harder."""

from __future__ import annotations

import json
import re
import statistics
from functools import lru_cache

import pytest

from corpus.synthetic import TASKS, TIERS, check, generate, iter_items
from corpus.synthetic import logic
from corpus.synthetic.derivations import STEP_RANGE

PER_TIER = 1000  # checked items per task and tier (the acceptance bar is "thousands per task")
SEED = 20240601


@lru_cache(maxsize=None)
def items(task: str, tier: int) -> tuple:
    return tuple(generate(task, PER_TIER, [tier], seed=SEED))


def wrong_answers(item) -> list[str]:
    """Answers that must be rejected: near misses of the right one, in the task's own format."""
    task, answer, meta = item.task, item.answer, item.meta
    if task == "bits":
        digits = answer.split()
        if answer in ("even", "odd"):
            return ["odd" if answer == "even" else "even", f"{answer} {answer}"]
        if meta["question"] == "mod3":
            return [str((int(answer) + 1) % 3), str((int(answer) + 2) % 3)]
        if meta["question"] == "count":
            return [str(int(answer) + 1), str(int(answer) - 1)]
        # multi-token answers: one digit flipped, one digit missing, one digit too many
        flipped = digits[:-1] + [str(1 - int(digits[-1]))]
        return [" ".join(flipped), " ".join(digits[1:]) or "0 0", f"{answer} 0"]
    if task == "counting" and answer in ("even", "odd"):
        return ["odd" if answer == "even" else "even"]
    if task == "lists" and answer.startswith("["):
        values = [int(v) for v in re.findall(r"-?\d+", answer)]
        bumped = [values[0] + 1] + values[1:]
        out = [str(bumped), str(values[:-1])]
        if len(set(values)) > 1:
            i = next(i for i in range(len(values) - 1) if values[i] != values[i + 1])
            swapped = values[:i] + [values[i + 1], values[i]] + values[i + 2:]
            out.append(str(swapped))
        return out
    if task == "linear":
        first, rest = answer.split(",", 1) if "," in answer else (answer, "")
        name, value = first.split("=")
        return [f"{name.strip()} = {int(value) + 1}" + (f",{rest}" if rest else "")]
    if task == "derivations" and meta["family"] == "algebra":
        return [f"{answer} + x^3", meta["expression"] + " + 1", f"-({answer})" if answer != "0" else "1"]
    if task == "derivations" and meta["family"] == "logic":
        negation = logic.derive(logic.neg(logic.parse(answer)))
        negated = logic.show(negation[-1][1]) if negation else logic.show(logic.neg(logic.parse(answer)))
        return [negated, f"~({answer})"]
    number = int(answer)
    return [str(number + 1), str(number - 1), str(-number - 1)]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_generated_answer_passes_its_checker(task):
    impl = TASKS[task]
    for tier in TIERS:
        for item in items(task, tier):
            assert impl.check(item.meta, item.answer), (item.native_id, item.prompt, item.answer)
            assert impl.check(item.meta, item.target), (item.native_id, item.target)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_perturbed_answers_are_rejected(task):
    impl = TASKS[task]
    for tier in TIERS:
        for item in items(task, tier)[:250]:
            for wrong in wrong_answers(item):
                assert not impl.check(item.meta, wrong), (item.native_id, item.answer, wrong)
            assert not impl.check(item.meta, ""), item.native_id
            assert not impl.check(item.meta, "I do not know"), item.native_id


@pytest.mark.parametrize("task", sorted(TASKS))
def test_checker_recomputes_instead_of_trusting_the_stored_answer(task):
    impl = TASKS[task]
    for item in items(task, 2)[:100]:
        poisoned = {**item.meta, "answer": wrong_answers(item)[0]}
        assert impl.check(poisoned, item.answer)
        assert not impl.check(poisoned, poisoned["answer"])


@pytest.mark.parametrize("task", sorted(TASKS))
def test_checker_reads_free_text(task):
    impl = TASKS[task]
    for item in items(task, 1)[:50]:
        assert impl.check(item.meta, f"Let me think.\nSome work here.\nThe answer is {item.answer}.")
        assert impl.check(item.meta, f"{item.target}\n")
        assert not impl.check(item.meta, f"{item.target.rsplit('####', 1)[0]}#### {wrong_answers(item)[0]}")


@pytest.mark.parametrize("task", sorted(TASKS))
def test_higher_tiers_are_measurably_harder(task):
    impl = TASKS[task]
    assert impl.hardness, f"{task} declares no hardness feature"
    for feature in impl.hardness:
        means = [statistics.mean(item.features[feature] for item in items(task, tier)) for tier in TIERS]
        assert all(a < b for a, b in zip(means, means[1:])), (task, feature, means)


def test_documented_difficulty_ranges():
    chain = {tier: {it.features["chain"] for it in items("word_problems", tier)} for tier in TIERS}
    assert chain[0] <= {1, 2} and chain[3] <= {6, 7, 8} and max(chain[2]) <= 6 and min(chain[1]) >= 3
    for tier, (low, high) in STEP_RANGE.items():
        steps = {it.features["steps"] for it in items("derivations", tier)}
        assert low == min(steps) and max(steps) == high, (tier, sorted(steps))
    digits = [max(it.features["digits"] for it in items("arith", tier)) for tier in TIERS]
    assert digits == [4, 8, 12, 18]
    lengths = [(min(f), max(f)) for f in ([it.features["length"] for it in items("lists", t)] for t in TIERS)]
    assert lengths == [(3, 5), (6, 9), (10, 14), (15, 20)]
    systems = [{it.features["variables"] for it in items("linear", tier)} for tier in TIERS]
    assert systems == [{1}, {1}, {2}, {3}]


@pytest.mark.parametrize("task", sorted(TASKS))
def test_rows_are_ascii_end_in_the_answer_and_store_their_features(task):
    for tier in TIERS:
        for item in items(task, tier)[:300]:
            assert item.prompt.strip() and item.prompt.isascii()
            if TASKS[task].answer_only:
                assert item.target == item.answer and item.features["steps"] == 0 and "####" not in item.target
            else:
                assert item.target.isascii() and item.target.endswith(f"\n#### {item.answer}")
                assert item.target.count("####") == 1 and item.features["steps"] >= 1
            assert "\n" not in item.answer
            assert item.features["level"] == tier == item.tier == item.meta["tier"]
            assert all(isinstance(v, (int, float)) for v in item.features.values())
            assert set(TASKS[task].hardness) <= set(item.features)
            assert json.loads(json.dumps(item.meta)) == item.meta
            assert item.native_id.startswith(f"{task}-s{SEED}-t{tier}-")


def test_every_task_family_and_variant_appears():
    families = {it.meta["family"] for tier in TIERS for it in items("derivations", tier)}
    assert families == {"evaluate", "algebra", "logic"}
    variants = {it.meta["variant"] for it in items("counting", 0)}
    assert variants == {"bit_parity", "sum_parity", "letters", "predicate"}
    ops = {it.meta["op"] for it in items("lists", 3)}
    assert ops == {"sort_asc", "sort_desc", "reverse", "count", "max", "min"}
    assert {it.meta["op"] for it in items("arith", 3)} == {"+", "-", "*"}


def test_derivation_steps_name_their_rules():
    rules = set()
    for tier in TIERS:
        for item in items("derivations", tier)[:300]:
            named = re.findall(r"^Step \d+ \(([^)]+)\)", item.target, flags=re.MULTILINE)
            assert len(named) == item.features["steps"], item.target
            rules.update(named)
    for rule in ("De Morgan", "implication elimination", "double negation", "distribute",
                 "combine like terms", "expand the product", "parentheses first", "left to right"):
        assert rule in rules, rule


def test_registry_check_and_lazy_stream_agree():
    item = next(iter_items("linear", 1, [3], seed=5))
    assert check(item, item.target) and not check(item, wrong_answers(item)[0])
