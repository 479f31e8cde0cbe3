"""Pilot: can an HRM design carry count -> parity / count mod 3 where the plain decoder cannot?

A quick in-process test bed (issue 20, point 3), independent of the corpus: bit strings of
length 4-14 in the corpus test bed's wording, word-level tokens, five questions about the same
string (count, parity, mod 3, running parity, binary count), answer-only loss, a holdout of
strings never trained on (every question of a held-out string is held out).
It trains each arm with a plain torch loop and prints exact match per question on the holdout.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python bench/hrm_bits_pilot.py --arms plain,pooled,per_token --steps 400 --questions count,parity,mod3

For HRM arms it also scores the same weights with the gate shut (``gate_shut``): the drop is
what the HRM's memory carries. Exact match is scored teacher-forced: a row counts when the argmax at every answer position is
the answer token (the same as greedy decoding getting the whole answer right).
"""

from __future__ import annotations

import argparse
import json
import random
import time
import zlib

import torch

from trainer.model import HRMMamba2LM, ModelConfig

QUESTIONS = {  # the corpus test bed's wording (corpus/synthetic/bits.py on branch i20)
    "count": "How many 1s?",
    "parity": "Is the number of 1s even or odd?",
    "mod3": "What is the number of 1s modulo 3?",
    "prefix_parity": "Parity of the 1s after each bit?",
    "binary": "How many 1s, in binary?",
}
# word-level tokens stand in for a BPE: one token per bit, per word, per answer digit
WORDS = ["<pad>", "<bos>", "<eos>", "Bits:", ".", "odd", "even"] + [str(n) for n in range(15)] + sorted(
    {w for q in QUESTIONS.values() for w in q.split()})
STOI = {w: i for i, w in enumerate(dict.fromkeys(WORDS))}
ARMS = {
    "plain": dict(hrm_enabled=False),
    "pooled": dict(hrm_design="pooled"),
    "per_token": dict(hrm_design="per_token"),
}


def answer(question: str, bits: str) -> list[str]:
    ones = bits.count("1")
    if question == "prefix_parity":
        return [str(bits[:i + 1].count("1") % 2) for i in range(len(bits))]
    if question == "binary":
        return list(format(ones, "b"))
    return [{"count": str(ones), "parity": "odd" if ones % 2 else "even", "mod3": str(ones % 3)}[question]]


def held_out(bits: str) -> bool:
    return zlib.crc32(bits.encode()) % 4 == 0


def encode(question: str, bits: str) -> tuple[list[int], int]:
    words = ["<bos>", "Bits:", *bits, ".", *QUESTIONS[question].split()]
    prompt = [STOI[w] for w in words]
    return prompt + [STOI[w] for w in answer(question, bits)] + [STOI["<eos>"]], len(prompt)


def random_bits(rng: random.Random, holdout: bool) -> str:
    while True:
        bits = "".join(rng.choice("01") for _ in range(rng.randint(4, 14)))
        if held_out(bits) == holdout:
            return bits


def make_batch(rows: list[tuple[list[int], int]]):
    width = max(len(ids) for ids, _ in rows)
    ids = torch.full((len(rows), width), STOI["<pad>"], dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for r, (seq, p) in enumerate(rows):
        ids[r, :len(seq)] = torch.tensor(seq)
        labels[r, p - 1:len(seq) - 1] = torch.tensor(seq[p:])
    return ids, torch.tensor([p for _, p in rows]), labels


def exact_match(model, rows, gate: float) -> float:
    model.eval()
    with torch.no_grad():
        ids, lens, labels = make_batch(rows)
        pred = model(ids, lens, gate_scale=gate).logits.argmax(-1)
        ok = ((pred == labels) | (labels == -100)).all(1)
    model.train()
    return float(ok.float().mean())


def run_arm(arm: str, overrides: dict, steps: int, batch: int, lr: float, seed: int, eval_rows: int,
            warmup: int, questions: list[str]) -> dict:
    torch.manual_seed(seed)
    rng = random.Random(seed)
    cfg = ModelConfig.demo(len(STOI), use_kernels=False, **{**ARMS[arm], **overrides})
    model = HRMMamba2LM(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01, betas=(0.9, 0.95))
    eval_rng = random.Random(1234)
    holdout = {q: [encode(q, random_bits(eval_rng, True)) for _ in range(eval_rows)] for q in questions}
    norms = {}
    if cfg.hrm_enabled:  # why the gate moves: the memory's size against the residual stream it joins
        model.bridge.memory_proj.register_forward_hook(
            lambda m, i, o: norms.__setitem__("memory", o.detach().pow(2).mean().sqrt().item()))
        model.pool.register_forward_pre_hook(
            lambda m, i: norms.__setitem__("residual", i[0].detach().pow(2).mean().sqrt().item()))
    start = time.time()
    for step in range(steps):
        rows = [encode(rng.choice(questions), random_bits(rng, False)) for _ in range(batch)]
        ids, lens, labels = make_batch(rows)
        for group in opt.param_groups:
            group["lr"] = lr * min(1.0, (step + 1) / 50) * (0.1 + 0.9 * (1 - step / steps))
        gate = 0.0 if step < warmup else min(1.0, (step - warmup + 1) / 50)
        out = model(ids, lens, labels, gate_scale=gate)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        if (step + 1) % 25 == 0:
            extra = "".join(f" {k}-rms {v:.3f}" for k, v in norms.items())
            print(f"  {arm} step {step + 1} loss {out.lm_loss.item():.3f} gate {out.diagnostics['gate_mean']:.3f}"
                  f"{extra} {time.time() - start:.0f}s", flush=True)
    result = {q: exact_match(model, rows, 1.0) for q, rows in holdout.items()}
    if cfg.hrm_enabled:  # the same weights with the memory left out: what the HRM carries
        result["gate_shut"] = {q: exact_match(model, rows, 0.0) for q, rows in holdout.items()}
    result.update(arm=arm, seed=seed, seconds=round(time.time() - start), params=model.num_parameters(),
                  gate=exact_gate(model, holdout))
    return result


def exact_gate(model, holdout) -> dict:
    if not model.cfg.hrm_enabled:
        return {}
    with torch.no_grad():
        gates = {}
        for q, rows in holdout.items():
            ids, lens, _ = make_batch(rows)
            gates[q] = round(model(ids, lens, gate_scale=1.0).diagnostics["gate_mean"], 3)
    return gates


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arms", default="plain,pooled,per_token")
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--seeds", default="0")
    p.add_argument("--eval-rows", type=int, default=300)
    p.add_argument("--warmup", type=int, default=0, help="steps with the gate shut")
    p.add_argument("--questions", default="count,parity,mod3")
    p.add_argument("--set", default="{}", help="JSON ModelConfig overrides for the HRM arms")
    args = p.parse_args()
    torch.set_num_threads(1)
    for seed in map(int, args.seeds.split(",")):
        for arm in args.arms.split(","):
            overrides = json.loads(args.set) if arm != "plain" else {}
            print(json.dumps(run_arm(arm, overrides, args.steps, args.batch, args.lr, seed,
                                     args.eval_rows, args.warmup, args.questions.split(","))), flush=True)


if __name__ == "__main__":
    main()
