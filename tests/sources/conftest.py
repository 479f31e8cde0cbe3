from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.tokenizer import train_tokenizer

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"

CODE = [
    "def add(a, b):\n    return a + b\n",
    "for i in range(10):\n    if i % 2 == 0:\n        print(i)\n",
    "assert similar_elements((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)",
    "import math\nclass Solution:\n    def solve(self, nums: list[int]) -> int:\n        return max(nums)\n",
]
PROSE = ("Which of these states is farthest north? Options: (A) Ohio (B) Texas. Context: Look at the map. "
         "The answer is (A). Lecture: maps have four cardinal directions. Janet has 16 eggs and sells 3.")


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory) -> Path:
    """A real byte-level BPE over code, science prose and math (plus shared MBPP text when present)."""
    texts = CODE * 50 + [PROSE] * 50 + [f"{a} * {b} = {a * b}" for a in range(40) for b in range(0, 40, 3)]
    mbpp = SHARED / "mbpp" / "mbpp.jsonl"
    if mbpp.exists():
        for line in mbpp.read_text().splitlines()[:300]:
            rec = json.loads(line)
            texts += [rec["text"], rec["code"], *rec["test_list"]]
    tok = train_tokenizer(texts, vocab_size=2048)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path
