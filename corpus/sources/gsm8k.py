"""GSM8K: grade-school math word problems with worked rationales.

question → prompt; rationale + ``#### answer`` → target. Calculator annotations ``<<48/2=24>>``
are kept (default) or stripped with ``--strip-calculator``. Difficulty features: reasoning steps
(rationale lines before the answer), calculator calls, and the question's length.
"""

from __future__ import annotations

import hashlib
import re

from corpus.errors import BadRecord
from corpus.sources.base import Example, RawRecord, Source, threshold_rule
from corpus.sources.fields import require

CALC = re.compile(r"<<[^<>]*>>")
ANSWER = re.compile(r"####\s*(.+?)\s*$")


class GSM8K(Source):
    name = "gsm8k"
    benchmark = True
    hub_id = "openai/gsm8k"
    hub_config = "main"
    tier_rule = threshold_rule("gsm8k-steps", 1, "steps", [3, 4, 6],
                               "tier = 0 for ≤2 steps, 1 for 3, 2 for 4-5, 3 for ≥6 rationale steps")

    @classmethod
    def add_arguments(cls, parser) -> None:
        parser.add_argument("--strip-calculator", action="store_true",
                            help="remove <<a*b=c>> calculator annotations from rationales")

    def options(self) -> dict:
        return {"strip_calculator": bool(self.args.strip_calculator)}

    def is_eval_split(self, split: str) -> bool:
        """GSM8K's test split is the benchmark: evaluation data whatever ``--role`` says."""
        return split == "test" or super().is_eval_split(split)

    def normalize(self, record: RawRecord) -> Example:
        question = require(record.data, "question").strip()
        answer_text = require(record.data, "answer").strip()
        match = ANSWER.search(answer_text)
        if not match:
            raise BadRecord("no '#### <answer>' line", "answer")
        final = match.group(1).replace(",", "").strip()
        rationale = answer_text[: match.start()].rstrip()
        calls = len(CALC.findall(rationale))
        if self.args.strip_calculator:
            rationale = CALC.sub("", rationale)
        steps = sum(1 for line in rationale.splitlines() if line.strip())
        target = f"{rationale}\n#### {final}" if rationale else f"#### {final}"
        native = str(record.data.get("id") or hashlib.sha256(question.encode()).hexdigest()[:16])
        return Example(
            native_id=native,
            prompt=question,
            target=target,
            meta={"answer": final, "ref": record.ref},
            features={"steps": steps, "calc_calls": calls, "question_words": len(question.split())},
        )
