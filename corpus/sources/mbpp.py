"""MBPP: crowd-sourced Python problems, each with a reference solution and three assert tests.

Two layouts: the original ``mbpp.jsonl`` (``text``, ``code``, ``test_list``, ``test_setup_code``,
``challenge_test_list``, ``task_id``) and the hand-verified ``sanitized-mbpp.json`` (``prompt``
instead of ``text``, plus ``test_imports``); a record's fields say which it is. One file holds
every split, so ``--split`` selects by the published task_id ranges (README of the release):
prompt 1-10, test 11-510, validation 511-600, train 601-974; ``--split all`` takes all four.

Prompt = the paper's wording: description + "Your code should pass these tests:" + the asserts;
target = the reference code. The tests stay in ``meta`` for execution-based evaluation.
Features: code lines, tests, challenge tests, description words; tier by code lines.
"""

from __future__ import annotations

import re
from typing import Iterator

from corpus.errors import BadRecord, UserError
from corpus.loading import Unreadable, load_records
from corpus.sources.base import Example, RawRecord, Source, threshold_rule
from corpus.sources.fields import optional, require

# the release README's split definition, by task_id (inclusive)
SPLIT_RANGES: dict[str, tuple[int, int]] = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
}
ALIASES = {"val": "validation"}
EVAL_SPLITS = {"test", "prompt"}  # prompt: few-shot exemplars, "not for training" (README)
ENTRY = re.compile(r"^\s*assert\s+(?:not\s+)?\(?\s*(?:set\(|math\.isclose\(|abs\()?\s*([A-Za-z_]\w*)\s*\(")


def split_of_task(task_id: int) -> str | None:
    """The published split a task_id belongs to, or None outside 1-974."""
    for split, (lo, hi) in SPLIT_RANGES.items():
        if lo <= task_id <= hi:
            return split
    return None


def requested_splits(split: str) -> list[str]:
    """``--split`` as a list of MBPP split names; an unknown name is a one-line error."""
    split = ALIASES.get(split, split)
    if split == "all":
        return list(SPLIT_RANGES)
    if split not in SPLIT_RANGES:
        raise UserError(f"mbpp has no split {split!r}: use one of {', '.join(SPLIT_RANGES)}, all")
    return [split]


class MBPP(Source):
    name = "mbpp"
    benchmark = True
    hub_id = "google-research-datasets/mbpp"
    hub_config = "full"
    tier_rule = threshold_rule(
        "mbpp-code-lines", 1, "code_lines", [4, 7, 12],
        "tier = 0 for ≤3 non-empty lines of reference code, 1 for 4-6, 2 for 7-11, 3 for ≥12",
    )

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--sanitized", action="store_true",
                            help="hub only: the hand-verified 'sanitized' config (427 problems); local "
                                 "files are recognised by their fields")

    def options(self) -> dict:
        requested_splits(self.args.split)  # fail early on a bad --split
        return {"sanitized": bool(self.args.sanitized)}

    def is_eval_split(self, split: str) -> bool:
        return any(s in EVAL_SPLITS for s in requested_splits(split))

    def records(self, paths, split, limit) -> Iterator[RawRecord]:
        wanted = requested_splits(split)
        if paths is None:
            config = "sanitized" if self.args.sanitized else "full"
            for name in wanted:
                yield from load_records(None, split=name, hub_id=self.hub_id, hub_config=config,
                                        revision=self.hub_revision)
            return
        for rec in load_records(paths):
            task_id = rec.data.get("task_id") if isinstance(rec.data, dict) else None
            known = isinstance(task_id, int) and not isinstance(task_id, bool)
            # records whose split cannot be told go on to normalize, which names the bad field
            if isinstance(rec.data, Unreadable) or not known or split_of_task(task_id) in wanted \
                    or split_of_task(task_id) is None:
                yield rec

    def normalize(self, record: RawRecord) -> Example:
        data = record.data
        if not isinstance(data, dict):
            raise BadRecord(f"expected a JSON object, got {type(data).__name__}")
        task_id = require(data, "task_id", int)
        if isinstance(task_id, bool):
            raise BadRecord("expected int, got bool", "task_id")
        split = split_of_task(task_id)
        if split is None:
            raise BadRecord(f"task_id {task_id} is outside the published ranges 1-974", "task_id")
        layout = "full" if "text" in data or "prompt" not in data else "sanitized"
        description = require(data, "text" if layout == "full" else "prompt").strip()
        code = require(data, "code").replace("\r\n", "\n").rstrip()
        tests = _text_list(data, "test_list", required=True)
        challenge = _text_list(data, "challenge_test_list")
        imports = _text_list(data, "test_imports")
        setup = optional(data, "test_setup_code", "")
        if not isinstance(setup, str):
            raise BadRecord(f"expected text, got {type(setup).__name__}", "test_setup_code")
        prompt = (f"You are an expert Python programmer, and here is your task: {description} "
                  f"Your code should pass these tests:\n\n" + "\n".join(t.strip() for t in tests))
        return Example(
            native_id=str(task_id),
            prompt=prompt,
            target=code,
            meta={
                "task_id": task_id, "split": split, "layout": layout, "entry_point": _entry_point(tests),
                "test_list": tests, "test_setup_code": setup.replace("\r\n", "\n"),
                "challenge_test_list": challenge, "test_imports": imports, "ref": record.ref,
            },
            features={
                "code_lines": sum(1 for line in code.splitlines() if line.strip()),
                "tests": len(tests),
                "challenge_tests": len(challenge),
                "description_words": len(description.split()),
            },
        )


def _text_list(data: dict, field: str, required: bool = False) -> list[str]:
    """A list of non-empty strings at ``field`` (absent and not required: empty list)."""
    value = require(data, field, list) if required else optional(data, field, [])
    if not isinstance(value, list):
        raise BadRecord(f"expected list, got {type(value).__name__}", field)
    if required and not value:
        raise BadRecord("empty list", field)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise BadRecord(f"expected text, got {type(item).__name__}", f"{field}[{i}]")
        if not item.strip():
            raise BadRecord("empty text", f"{field}[{i}]")
        out.append(item.replace("\r\n", "\n"))
    return out


def _entry_point(tests: list[str]) -> str | None:
    """The function the asserts call (``assert min_cost(...) == 8`` → ``min_cost``)."""
    for test in tests:
        match = ENTRY.match(test)
        if match and match.group(1) not in ("set", "sorted", "round", "abs", "math", "len", "str", "list", "tuple"):
            return match.group(1)
    return None
