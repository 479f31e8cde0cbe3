"""A tiny trained run for the evaluation tests, in the trainer's real on-disk format.

A real byte-level BPE tokenizer (corpus.tokenizer) is trained on a few GSM8K-style problems; a
small HRM x Mamba2 model (halting on) is trained in-process on the rows the corpus would build
from them (``[bos] + encode(question)``, ``encode(rationale + "#### N") + [eos]``, loss on the
target) until it reproduces them; the weights go to ``runs/<name>/checkpoints/step_N.pt`` (with
its sidecar, through trainer.checkpoint) and ``best-model/`` with ``tokenizer.json``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

import torch

from corpus.sources.base import RawRecord
from corpus.sources.gsm8k import GSM8K

PROBLEMS = [
    {"question": "Tom has 3 apples and buys 4 more. How many apples does he have?",
     "answer": "Tom has 3 + 4 = <<3+4=7>>7 apples.\n#### 7"},
    {"question": "A box holds 6 pens. How many pens are in 2 boxes?",
     "answer": "2 boxes hold 2 * 6 = <<2*6=12>>12 pens.\n#### 12"},
    {"question": "Sara had 10 dollars and spent 3. How much is left?",
     "answer": "She has 10 - 3 = <<10-3=7>>7 dollars left.\n#### 7"},
]
WIKI = ("= Apples =\n\nAn apple is a round fruit. Apples grow on trees in many countries, and people "
        "eat them fresh or cooked. Café owners sell apple pie — a sweet dish.\n\n"
        "= Pens =\n\nA pen is a tool for writing with ink. Pens come in boxes of six or twelve.\n")


def examples():
    """The problems through the corpus's own GSM8K normalize (prompt = question)."""
    source = GSM8K(argparse.Namespace(strip_calculator=False))
    return [source.normalize(RawRecord(f"tiny:{i}", p)) for i, p in enumerate(PROBLEMS)]


def train_tokenizer_file(path: Path):
    from corpus.tokenizer import load_tokenizer, train_tokenizer

    texts = [p["question"] + "\n" + p["answer"] for p in PROBLEMS] * 20 + [WIKI] * 5
    train_tokenizer(texts, 320).save(str(path))
    return load_tokenizer(path)


def tiny_config(vocab_size: int, **overrides):
    from trainer.model import ModelConfig

    base = dict(vocab_size=vocab_size, d_model=64, n_layers=2, d_state=16, headdim=16, chunk_size=16, d_hrm=32,
                hrm_slots=2, hrm_heads=2, h_cycles=3, l_steps=1, use_halting=True)
    base.update(overrides)
    return ModelConfig(**base)


def memorize(model, info, steps: int = 50, lr: float = 1e-2) -> float:
    """Train ``model`` on the problems' corpus rows until it reproduces their targets."""
    tok = info.tokenizer
    rows = []
    for ex in examples():
        prompt = [info.bos_id] + tok.encode(ex.prompt, add_special_tokens=False).ids
        target = tok.encode(ex.target, add_special_tokens=False).ids + [info.eos_id]
        rows.append((prompt, target))
    width = max(len(p) + len(t) for p, t in rows)
    ids = torch.full((len(rows), width), info.pad_id)
    labels = torch.full((len(rows), width), -100)
    for r, (p, t) in enumerate(rows):
        seq = torch.tensor(p + t)
        ids[r, :len(seq)] = seq
        labels[r, len(p) - 1:len(seq) - 1] = seq[len(p):]  # the target only
    lens = torch.tensor([len(p) for p, _ in rows])
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        out = model(ids, lens, labels, gate_scale=1.0)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
    model.eval()
    return float(out.lm_loss.detach())


def write_run(runs_dir: Path, name: str, model, tokenizer_path: Path, step: int) -> Path:
    """``runs/<name>/checkpoints/step_<step>.pt`` and ``best-model/``, as the trainer writes them."""
    from trainer.checkpoint import Checkpoints

    run_dir = Path(runs_dir) / name
    config = {"run_name": name, "train": {"hrm_gate_warmup_steps": 0, "gate_ramp_steps": 0, "max_seq_len": 128},
              "eval": {}, "model": {}}
    state = {"format": 1, "step": step, "model": model.state_dict(), "model_config": asdict(model.cfg),
             "plan_id": None, "stopped": False, "config": json.dumps(config)}
    ck = Checkpoints(run_dir)
    ck.save(state)
    ck.save_best({"model": model.state_dict(), "model_config": asdict(model.cfg), "step": step, "plan_id": None},
                 {"config.json": json.dumps({**config, "model_config": asdict(model.cfg)}).encode(),
                  "tokenizer.json": Path(tokenizer_path)})
    return run_dir


def build_run(tmp: Path, name: str = "tiny", steps: int = 50, seed: int = 0):
    """Tokenizer + memorized model + run directory; returns (runs_dir, run_dir, model, info)."""
    from trainer.model import HRMMamba2LM

    info = train_tokenizer_file(tmp / "tokenizer.json")
    torch.manual_seed(seed)
    model = HRMMamba2LM(tiny_config(info.vocab_size))
    with torch.no_grad():  # the memory projection starts at zero; open it so the HRM matters
        model.bridge.memory_proj.weight.normal_(0.0, 0.05)
    memorize(model, info, steps)
    runs = tmp / "runs"
    run_dir = write_run(runs, name, model, tmp / "tokenizer.json", step=steps)
    return runs, run_dir, model, info
