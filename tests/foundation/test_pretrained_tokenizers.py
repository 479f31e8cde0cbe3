"""Pretrained tokenizers: a GPT-2-style tokenizer.json with a special-token mapping builds a source,
an HF tokenizer directory declares its own specials, the mapping is part of the identity, and the
hints say what to pass."""

from __future__ import annotations

import json

import duckdb
import pyarrow.parquet as pq
import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from corpus.tokenizer import load_tokenizer, vocab_shortfall
from tests.foundation.helpers import run_cli, write_jsonl

ENDOFTEXT = "<|endoftext|>"
GPT2_MAP = f"pad={ENDOFTEXT},bos={ENDOFTEXT},eos={ENDOFTEXT}"


@pytest.fixture(scope="module")
def gpt2_style(tmp_path_factory):
    """A byte-level BPE whose only special token is GPT-2's ``<|endoftext|>`` (no pad/bos/eos names)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=600, special_tokens=[ENDOFTEXT],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([f"Janet has {a} eggs and sells {b}. {a} - {b} = {a - b}" for a in range(40)
                             for b in range(0, 40, 3)], trainer=trainer)
    path = tmp_path_factory.mktemp("gpt2") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture
def gsm(tmp_path):
    return write_jsonl(tmp_path / "train.jsonl", [
        {"question": f"Janet has {a} eggs and sells {a // 2}. How many are left?",
         "answer": f"She has {a} - {a // 2} = {a - a // 2} left.\n#### {a - a // 2}"} for a in range(2, 62)])


def _build(src, data, *extra):
    return run_cli("corpus.build", "gsm8k", "--from", str(src), "--data-dir", str(data), "--quiet",
                   "--decontaminate", "off", *extra)


def test_gpt2_style_tokenizer_without_mapping_names_the_flag(gpt2_style, gsm, tmp_path):
    proc = _build(gsm, tmp_path / "data", "--tokenizer", str(gpt2_style))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "--special-tokens" in line and ENDOFTEXT in line and "pad" in line


def test_gpt2_style_tokenizer_with_mapping_builds_and_records_it(gpt2_style, gsm, tmp_path):
    data = tmp_path / "data"
    proc = _build(gsm, data, "--tokenizer", str(gpt2_style), "--special-tokens", GPT2_MAP)
    assert proc.returncode == 0, proc.stderr
    eot = Tokenizer.from_file(str(gpt2_style)).token_to_id(ENDOFTEXT)
    con = duckdb.connect(str(data / "catalog.duckdb"), read_only=True)
    (sha, rel, pad, bos, eos), = con.execute("SELECT sha256, path, pad_id, bos_id, eos_id FROM tokenizers").fetchall()
    (vid, tok_sha, rows), = con.execute("SELECT id, tokenizer_sha, rows FROM versions").fetchall()
    files = dict(con.execute("SELECT path, sha256 FROM files WHERE role = 'tokenizer'").fetchall())
    con.close()
    assert (pad, bos, eos) == (eot, eot, eot) and tok_sha == sha and rows == 60
    installed = data / rel
    sidecar = installed.with_name(f"{sha}.specials.json")
    assert json.loads(sidecar.read_text()) == {"pad": ENDOFTEXT, "bos": ENDOFTEXT, "eos": ENDOFTEXT}
    assert set(files) == {rel, str(sidecar.relative_to(data))}  # both copies hashed, so verify covers them
    again = load_tokenizer(installed)  # the installed copy carries its mapping
    assert (again.sha256, again.pad_id, again.bos_id, again.eos_id) == (sha, eot, eot, eot)
    shard = pq.read_table(next((data / "shards" / "gsm8k" / vid).glob("train-*.parquet"))).to_pylist()
    tok = Tokenizer.from_file(str(gpt2_style))
    for row in shard:
        assert row["prompt_ids"][0] == eot and row["target_ids"][-1] == eot
        assert tok.decode(row["target_ids"][:-1]) == row["target"]
    assert run_cli("corpus.verify", "--data-dir", str(data)).returncode == 0
    # a rebuild with the same mapping is the same version; another mapping is another tokenizer
    assert "already built" in _build(gsm, data, "--tokenizer", str(gpt2_style), "--special-tokens", GPT2_MAP).stdout
    bos_other = load_tokenizer(gpt2_style, {"pad": ENDOFTEXT, "bos": "J", "eos": ENDOFTEXT})
    assert bos_other.sha256 != sha and bos_other.bos_id != eot


def test_hf_directory_declares_its_specials(gpt2_style, gsm, tmp_path):
    hf = tmp_path / "gpt2-local"
    hf.mkdir()
    (hf / "tokenizer.json").write_bytes(gpt2_style.read_bytes())
    (hf / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": ENDOFTEXT, "eos_token": {"content": ENDOFTEXT, "lstrip": False}, "unk_token": ENDOFTEXT}))
    (hf / "tokenizer_config.json").write_text(json.dumps({"pad_token": ENDOFTEXT, "model_max_length": 1024}))
    info = load_tokenizer(hf)
    eot = Tokenizer.from_file(str(gpt2_style)).token_to_id(ENDOFTEXT)
    assert (info.pad_id, info.bos_id, info.eos_id) == (eot, eot, eot) and info.mapped
    assert info.sha256 == load_tokenizer(gpt2_style, dict(info.specials)).sha256  # same file + mapping, same id
    proc = _build(gsm, tmp_path / "data", "--tokenizer", str(hf))
    assert proc.returncode == 0, proc.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = _build(gsm, tmp_path / "data2", "--tokenizer", str(empty))
    assert proc.returncode == 2 and "has no tokenizer.json" in proc.stderr and "Traceback" not in proc.stderr


def test_hf_directory_with_eos_but_no_pad_pads_with_eos(gpt2_style, tmp_path):
    """GPT-NeoX (the Mamba2 checkpoints' tokenizer) names bos and eos but no pad: no sidecar needed."""
    hf = tmp_path / "neox-local"
    hf.mkdir()
    (hf / "tokenizer.json").write_bytes(gpt2_style.read_bytes())
    (hf / "tokenizer_config.json").write_text(json.dumps({"bos_token": ENDOFTEXT, "eos_token": ENDOFTEXT,
                                                          "unk_token": ENDOFTEXT}))
    info = load_tokenizer(hf)
    eot = Tokenizer.from_file(str(gpt2_style)).token_to_id(ENDOFTEXT)
    assert (info.pad_id, info.bos_id, info.eos_id) == (eot, eot, eot)
    assert dict(info.specials) == {"pad": ENDOFTEXT, "bos": ENDOFTEXT, "eos": ENDOFTEXT}


def test_hub_id_offline_is_one_line(gsm, tmp_path):
    proc = _build(gsm, tmp_path / "data", "--tokenizer", "gpt2")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "gpt2" in proc.stderr and "offline" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_several_tokenizers_in_the_data_root_hint_says_tokenizer(tokenizer_path, gpt2_style, gsm, tmp_path):
    data = tmp_path / "data"
    assert _build(gsm, data, "--tokenizer", str(tokenizer_path)).returncode == 0
    assert _build(gsm, data, "--tokenizer", str(gpt2_style), "--special-tokens", GPT2_MAP).returncode == 0
    proc = _build(gsm, data)
    assert proc.returncode == 2 and "holds 2 tokenizers" in proc.stderr and "pass --tokenizer" in proc.stderr
    assert "train" not in proc.stderr  # training a third tokenizer would not help


def test_bad_special_tokens_flag_is_one_line(tokenizer_path, gsm, tmp_path):
    proc = _build(gsm, tmp_path / "data", "--tokenizer", str(tokenizer_path), "--special-tokens", "sep=<x>")
    assert proc.returncode == 2 and "ROLE=TOKEN" in proc.stderr and "Traceback" not in proc.stderr


def test_training_notes_a_vocabulary_it_did_not_reach(tmp_path):
    text = tmp_path / "small.txt"
    text.write_text("a tiny text with few words repeated a tiny text\n" * 20)
    proc = run_cli("corpus.tokenizer", "train", "--from", str(text), "--vocab-size", "32000",
                   "--out", str(tmp_path / "t.json"))
    assert proc.returncode == 0, proc.stderr
    got = load_tokenizer(tmp_path / "t.json").vocab_size
    assert got < 32000 and f"asked for a vocabulary of 32,000, got {got:,}" in proc.stdout
    assert vocab_shortfall(500, 500, 2) is None


def test_a_runs_copy_keeps_the_mapping(gpt2_style, tmp_path):
    """What a run's best-model/ stores (TokenizerInfo.files) loads back to the same tokenizer."""
    info = load_tokenizer(gpt2_style, {"pad": ENDOFTEXT, "bos": ENDOFTEXT, "eos": ENDOFTEXT})
    files = info.files("tokenizer.json")
    assert set(files) == {"tokenizer.json", "tokenizer.specials.json"}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content if isinstance(content, bytes) else content.read_bytes())
    copy = load_tokenizer(tmp_path / "tokenizer.json")
    assert (copy.sha256, copy.pad_id, copy.bos_id, copy.eos_id) == (info.sha256, info.pad_id, info.bos_id, info.eos_id)


def test_project_tokenizers_keep_their_plain_identity(tokenizer_path):
    """The default names need no sidecar, and the identity stays the file's sha256 (old versions keep their ids)."""
    from corpus.atomic import sha256_file

    info = load_tokenizer(tokenizer_path)
    assert not info.mapped and info.sha256 == sha256_file(tokenizer_path)
    assert list(info.files()) == ["tokenizer.json"]
