"""Shared data for the evaluation tests: the public benchmark files in ../shared/data.

Loaders read the raw files with json/gzip and hand the scorers plain dicts, as a corpus source
would. Each fixture skips with a reason when its file is absent (a fresh clone has no shared data).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def data_file(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs {path} (the shared benchmark data, absent on a fresh clone)")
    return path


@pytest.fixture(scope="session")
def gsm8k_test() -> list[dict]:
    """GSM8K test split: 1,319 {question, answer} rows, each answer ending in '#### N'."""
    with open(data_file("gsm8k", "test.jsonl"), encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def humaneval_problems() -> list[dict]:
    """HumanEval: 164 problems with prompt, canonical_solution, test, entry_point."""
    with gzip.open(data_file("humaneval", "HumanEval.jsonl.gz"), "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def mbpp_test_problems() -> list[dict]:
    """MBPP test split: task_id 11..510 (500 problems) of the full mbpp.jsonl."""
    from trainer.eval.code_exec import MBPP_TEST_IDS

    with open(data_file("mbpp", "mbpp.jsonl"), encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    return [row for row in rows if row["task_id"] in MBPP_TEST_IDS]


@pytest.fixture(scope="session")
def scienceqa_test() -> list[dict]:
    """ScienceQA problems of the test split that the shared subset holds, with their pid."""
    problems = json.loads(data_file("scienceqa", "problems.json").read_text(encoding="utf-8"))
    splits = json.loads(data_file("scienceqa", "pid_splits.json").read_text(encoding="utf-8"))
    return [dict(problems[pid], pid=pid) for pid in splits["test"] if pid in problems]
