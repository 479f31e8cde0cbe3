"""corpus.tokenizer: byte-level BPE with pad/bos/eos, exact round trip, one-line errors."""

from __future__ import annotations

import json

from tokenizers import Tokenizer

from corpus.tokenizer import load_tokenizer
from tests.foundation.helpers import run_cli


def test_train_from_files_round_trips_text(tmp_path):
    text = tmp_path / "corpus.txt"
    text.write_text("Café ° naïve – 24 in, 6 kg.\n" * 50 + "The lobster is blue.\n" * 50)
    jl = tmp_path / "more.jsonl"
    jl.write_text(json.dumps({"question": "How many eggs?", "answer": "16 - 3 = 13\n#### 13"}) + "\n")
    out = tmp_path / "tok.json"
    proc = run_cli("corpus.tokenizer", "train", "--from", str(text), str(jl), "--vocab-size", "400", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    info = load_tokenizer(out)
    assert (info.pad_id, info.bos_id, info.eos_id) == (0, 1, 2) and info.vocab_size <= 400
    assert info.sha256 in proc.stdout
    tok = Tokenizer.from_file(str(out))
    for sample in ["Café ° naïve – 24 in, 6 kg.", "  leading spaces\tand tabs\n", "unseen 漢字 🙂"]:
        assert tok.decode(tok.encode(sample).ids) == sample


def test_train_needs_input_and_reports_missing_files(tmp_path):
    proc = run_cli("corpus.tokenizer", "train", "--vocab-size", "300", "--out", str(tmp_path / "t.json"))
    assert proc.returncode == 2 and "nothing to train on" in proc.stderr
    proc = run_cli("corpus.tokenizer", "train", "--from", str(tmp_path / "x.txt"), "--vocab-size", "300",
                   "--out", str(tmp_path / "t.json"))
    assert proc.returncode == 2 and "x.txt" in proc.stderr and "Traceback" not in proc.stderr
