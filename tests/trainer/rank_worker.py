"""One rank of the two-rank equality test (tests/trainer/test_distributed.py), or the single
process it is compared with: ``python rank_worker.py RANK WORLD PORT OUT``.

Every process builds the same float64 model and the same global batches; rank r trains on rows
r, r + world, ... of each, through the trainer's own update (trainer/step.py) and gradient sum
(trainer/distributed.py). The state after the closed-gate steps and after the open-gate steps is
saved to OUT for the test to compare.
"""

from __future__ import annotations

import copy
import sys
from contextlib import nullcontext

import torch
import torch.distributed as torch_dist

from trainer.data import Batch
from trainer.distributed import World
from trainer.model import HRMMamba2LM, ModelConfig
from trainer.optim import build_optimizer
from trainer.step import train_step

VOCAB, ROWS, WIDTH = 53, 8, 21
CLOSED_STEPS, OPEN_STEPS, LR, WD = 6, 4, 0.01, 0.1


def global_batch(step: int) -> Batch:
    g = torch.Generator().manual_seed(1000 + step)
    ids = torch.randint(1, VOCAB, (ROWS, WIDTH), generator=g)
    lengths = torch.randint(6, WIDTH + 1, (ROWS,), generator=g)
    prompt_lens = torch.minimum(torch.randint(1, 12, (ROWS,), generator=g), lengths)
    positions = torch.arange(WIDTH)[None, :]
    ids = ids.masked_fill(positions >= lengths[:, None], 0)
    labels = torch.cat([ids[:, 1:], torch.zeros(ROWS, 1, dtype=ids.dtype)], 1)
    labels = labels.masked_fill(positions >= lengths[:, None] - 1, -100)  # every real next token
    return Batch(ids, prompt_lens, labels, [f"row{step}-{i}" for i in range(ROWS)], list(range(ROWS)),
                 int(lengths.sum()), ROWS * WIDTH)


def rank_rows(batch: Batch, rank: int, world: int) -> Batch:
    keep = list(range(rank, ROWS, world))
    real = int((batch.input_ids[keep] != 0).sum())
    return Batch(batch.input_ids[keep], batch.prompt_lens[keep], batch.labels[keep], [batch.ids[i] for i in keep],
                 keep, real, len(keep) * WIDTH)


def build():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=VOCAB, d_model=32, n_layers=2, d_state=8, headdim=16, chunk_size=8, d_hrm=16,
                      hrm_slots=2, hrm_heads=2, h_cycles=2, l_steps=2, deep_supervision=True, use_halting=True,
                      halting_weight=0.05)
    model = HRMMamba2LM(cfg).double()
    return model, build_optimizer(model, "adamw", LR, WD)


def snapshot(model, optimizer) -> dict:
    return {"model": {k: v.clone() for k, v in model.state_dict().items()},
            "optimizer": copy.deepcopy(optimizer.state_dict()), "names": [n for n, _ in model.named_parameters()]}


def main(rank: int, world_size: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    if world_size > 1:
        torch_dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    world = World(rank, world_size, rank)
    model, optimizer = build()
    model.train()
    device = torch.device("cpu")
    states = {"initial": snapshot(model, optimizer)}
    for step in range(CLOSED_STEPS + OPEN_STEPS):
        gate = 0.0 if step < CLOSED_STEPS else 0.5
        batch = rank_rows(global_batch(step), rank, world_size)
        train_step(model, optimizer, None, world, device, batch, LR, gate, 1.0, nullcontext)
        if step == CLOSED_STEPS - 1:
            states["closed"] = snapshot(model, optimizer)
    states["open"] = snapshot(model, optimizer)
    if rank == 0:
        torch.save(states, out)
    if world_size > 1:
        torch_dist.destroy_process_group()


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
