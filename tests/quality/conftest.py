"""Quality tests: a real tokenizer, real builds into tmp data roots, real DuckDB and Parquet."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared" / "data"

SUBJECTS = ["farmer", "baker", "teacher", "pilot", "doctor", "painter", "sailor", "miner", "gardener", "tailor"]
THINGS = ["apples", "loaves", "books", "maps", "boxes", "brushes", "ropes", "stones", "seeds", "buttons"]
PLACES = ["market", "school", "harbour", "village", "library", "station", "garden", "museum", "bakery", "farm"]


def qa_records(n: int, prefix: str = "q") -> list[dict]:
    """``n`` distinct question/answer records, each well over 13 words, no two alike."""
    out = []
    for i in range(n):
        s, t, p = SUBJECTS[i % 10], THINGS[(i // 10) % 10], PLACES[(i // 100) % 10]
        out.append({
            "id": f"{prefix}{i}",
            "prompt": f"A {s} carries {i + 2} {t} to the {p} every morning and gives away {i % 7} of them; "
                      f"how many {t} reach the {p} in record {prefix}{i}?",
            "answer": f"The {s} starts with {i + 2} {t} and gives away {i % 7}, so {i + 2 - i % 7} arrive.",
        })
    return out


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory) -> Path:
    from corpus.tokenizer import train_tokenizer

    texts = [r["prompt"] + " " + r["answer"] for r in qa_records(300)]
    gsm = SHARED / "gsm8k" / "test.jsonl"
    if gsm.exists():
        for line in gsm.read_text().splitlines()[:300]:
            rec = json.loads(line)
            texts += [rec["question"], rec["answer"]]
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    train_tokenizer(texts, vocab_size=1024).save(str(path))
    return path


def build(root: Path, tokenizer: Path, *argv: str) -> int:
    """``python -m corpus.build`` in-process (Great Expectations is imported once per session)."""
    from corpus.build import main

    return main([*argv, "--tokenizer", str(tokenizer), "--data-dir", str(root), "--quiet"])


def copy_root(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (absent on a fresh clone)")
    return path


@pytest.fixture(scope="session")
def qa_root(tmp_path_factory, tokenizer_path) -> Path:
    """A data root with one published jsonl QA version (80 rows, one shard); copy before editing."""
    root = tmp_path_factory.mktemp("qa-root")
    src = write_jsonl(root.parent / "qa-input" / "qa.jsonl", qa_records(80))
    assert build(root, tokenizer_path, "jsonl", "--from", str(src), "--target-field", "answer",
                 "--id-field", "id", "--val-ratio", "0", "--max-seq-len", "128") == 0
    return root
