"""GSM8K scored both ways: our lenient scorer and lm-evaluation-harness's strict-match and
flexible-extract, the latter checked against lm-eval's own filters and metric (its gsm8k.yaml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trainer.eval.answers import gsm8k_correct
from trainer.eval.gsm8k_harness import (cut_at_stops, extract_flexible, extract_strict, flexible_extract,
                                        strict_match)

REFERENCE = "He pays 4 * 25 = <<4*25=100>>100 dollars.\n#### 100"
# (generation, lenient, strict-match, flexible-extract): every format the issue lists
CASES = [
    ("4 * 25 = 100\n#### 100", True, True, True),
    ("So he pays #### $100", True, False, True),            # lm-eval's strict regex needs a digit after "#### "
    ("He pays\n####100", True, False, True),                 # no space after ####
    ("The answer is 100.00", True, False, False),            # 100.00 != 100 as strings
    ("The answer is \\boxed{100}", True, False, True),
    ("Half of it: 1/2", False, False, False),
    ("4 * 25 = 100. The answer is 100.", True, False, True),  # no #### at all
    ("#### 90\nWait, recompute: #### 100", True, False, True),  # two marks: we read the last, lm-eval the first
    # a model that keeps writing after its answer: lm-eval stops at "Question:", we read on
    ("#### 100\nQuestion: A pen costs 3 dollars. How much do 7 pens cost?\nAnswer: 3 * 7 = 21\n#### 21",
     False, True, True),
    ("#### 100 dollars, because 4 * 25 = 100 and then 5 more", True, True, False),  # text after the answer
    ("#### 1,000", False, False, False),
    ("", False, False, False),
]


@pytest.mark.parametrize("generation, lenient, strict, flexible", CASES)
def test_both_scorers_on_every_listed_format(generation, lenient, strict, flexible):
    assert gsm8k_correct(generation, REFERENCE) is lenient
    assert strict_match(generation, REFERENCE) is strict
    assert flexible_extract(generation, REFERENCE) is flexible


def test_stop_sequences_cut_like_lm_eval():
    assert cut_at_stops("#### 7\nQuestion: next</s>") == "#### 7\n"
    assert cut_at_stops("a</s>b<|im_end|>c") == "a"


def _lm_eval_task_config() -> dict:
    import yaml

    import lm_eval

    path = Path(lm_eval.__file__).parent / "tasks" / "gsm8k" / "gsm8k.yaml"
    return yaml.safe_load(path.read_text())


def test_the_compatible_scorer_equals_lm_evals_own_filters_and_metric():
    pytest.importorskip("lm_eval", reason="lm-eval (dev and lmeval extras) is needed to compare with its own code")
    from lm_eval.api.metrics import exact_match_hf_evaluate
    from lm_eval.filters.extraction import RegexFilter
    from lm_eval.filters.selection import TakeFirstFilter

    task = _lm_eval_task_config()
    stops = tuple(task["generation_kwargs"]["until"])
    from trainer.eval.gsm8k_harness import STOP_SEQUENCES

    assert stops == STOP_SEQUENCES
    metric = {k: v for k, v in task["metric_list"][0].items() if k in ("regexes_to_ignore", "ignore_case",
                                                                        "ignore_punctuation")}
    pipelines = {f["name"]: f["filter"] for f in task["filter_list"]}
    ours = {"strict-match": (extract_strict, strict_match), "flexible-extract": (extract_flexible, flexible_extract)}
    generations = [g for g, *_ in CASES] + ["#### -3.5\n", "-7 apples", "$1,234.", "answer 12 and 13.", "x"]
    for name, steps in pipelines.items():
        regex = RegexFilter(**{k: v for k, v in steps[0].items() if k != "function"})
        assert steps[1]["function"] == "take_first"
        # lm-eval cuts each generation at `until` (its model's generate_until), then filters
        cut = [[g.split(stops[0])[0].split(stops[1])[0].split(stops[2])[0]] for g in generations]
        filtered = list(TakeFirstFilter().apply(regex.apply(cut, [{}] * len(cut)), [{}] * len(cut)))
        extract, score = ours[name]
        assert [extract(g) for g in generations] == filtered, name
        for g, prediction in zip(generations, filtered):
            theirs = exact_match_hf_evaluate([prediction], [REFERENCE], **metric)["exact_match"]
            assert score(g, REFERENCE) == bool(theirs), (name, g)
