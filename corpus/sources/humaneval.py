"""HumanEval: 164 hand-written Python functions, an evaluation source (never trained on).

Input: ``HumanEval.jsonl(.gz)`` (``task_id``, ``prompt``, ``canonical_solution``, ``test``,
``entry_point``) or the hub's ``openai/openai_humaneval``. Prompt = the signature and docstring
exactly as published (its whitespace is code); target = the canonical body. ``test`` and
``entry_point`` stay in ``meta`` for execution-based scoring. The set has one split, so
``--split`` may be ``test``, ``all`` or the build's default and always reads all of it.
Features: solution lines, asserts in the test, docstring examples; tier by solution lines.
"""

from __future__ import annotations

from typing import Iterator

from corpus.errors import BadRecord, UserError
from corpus.loading import load_records
from corpus.sources.base import Example, RawRecord, Source, threshold_rule
from corpus.sources.fields import require

SPLITS = ("test", "all", "train")  # "train" is only the build's default flag value


class HumanEval(Source):
    name = "humaneval"
    benchmark = True
    hub_id = "openai/openai_humaneval"
    role = "eval"
    tier_rule = threshold_rule(
        "humaneval-solution-lines", 1, "solution_lines", [3, 6, 10],
        "tier = 0 for ≤2 non-empty lines of canonical solution, 1 for 3-5, 2 for 6-9, 3 for ≥10",
    )

    def options(self) -> dict:
        if self.args.split not in SPLITS:
            raise UserError(f"humaneval has one split (test): --split {self.args.split!r} is not available")
        return {}

    def registered_split(self, split: str) -> str:
        return "test" if split in SPLITS else split  # its one split (the build's default is train); others refused

    def records(self, paths, split, limit) -> Iterator[RawRecord]:
        return load_records(paths, split="test", hub_id=self.hub_id, revision=self.hub_revision)

    def normalize(self, record: RawRecord) -> Example:
        data = record.data
        if not isinstance(data, dict):
            raise BadRecord(f"expected a JSON object, got {type(data).__name__}")
        task_id = require(data, "task_id").strip()
        prompt = require(data, "prompt")
        solution = require(data, "canonical_solution")
        test = require(data, "test")
        entry_point = require(data, "entry_point").strip()
        if not entry_point.isidentifier():
            raise BadRecord(f"{entry_point!r} is not a Python identifier", "entry_point")
        if f"def {entry_point}(" not in prompt:
            raise BadRecord(f"prompt does not define {entry_point}()", "entry_point")
        if "def check(" not in test:
            raise BadRecord("no check(candidate) function", "test")
        return Example(
            native_id=task_id,
            prompt=prompt,
            target=solution,
            meta={"task_id": task_id, "entry_point": entry_point, "test": test, "split": "test",
                  "ref": record.ref},
            features={
                "solution_lines": sum(1 for line in solution.splitlines() if line.strip()),
                "test_asserts": test.count("assert"),
                "doc_examples": prompt.count(">>>"),
                "prompt_words": len(prompt.split()),
            },
        )
