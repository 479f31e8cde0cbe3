from __future__ import annotations

import json
from pathlib import Path

import pytest

from corpus.tokenizer import train_tokenizer

REPO = Path(__file__).resolve().parents[2]

WORDS = ("the quick brown fox jumps over the lazy dog while seven clever students solve "
         "forty two puzzles about numbers and letters in a quiet library every morning").split()


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory) -> Path:
    """A real byte-level BPE trained on English-like text, math and the shared GSM8K if present."""
    texts = [" ".join(WORDS[i:] + WORDS[:i]) for i in range(len(WORDS))] * 20
    texts += [f"{a} + {b} = {a + b}. Janet has {a} eggs and sells {b}." for a in range(60) for b in range(0, 60, 7)]
    gsm = REPO.parent / "shared" / "data" / "gsm8k" / "test.jsonl"
    if gsm.exists():
        for line in gsm.read_text().splitlines()[:400]:
            rec = json.loads(line)
            texts += [rec["question"], rec["answer"]]
    tok = train_tokenizer(texts, vocab_size=2048)
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    tok.save(str(path))
    return path


