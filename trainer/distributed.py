"""torchrun support: one process per rank, gloo on CPU, nccl on CUDA.

Gradients are averaged by one flat all-reduce after backward instead of wrapping the model in
DDP: the HRM's parameters get no gradient while the gate is shut, which DDP handles only with
``find_unused_parameters``, and each rank's loss is weighted by its share of the global batch's
labelled tokens so the update equals a single process's over the same global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_world(device_type: str) -> World:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1), else a single process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def shutdown(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()


def all_sum(world: World, values: list[float], device: torch.device) -> list[float]:
    """Sum a few floats over ranks (one collective)."""
    if not world.distributed:
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def all_max(world: World, value: float, device: torch.device) -> float:
    if not world.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def all_sum_tensor(world: World, t: torch.Tensor) -> torch.Tensor:
    """Sum a device tensor over ranks without leaving the device (a copy; ``t`` is untouched)."""
    if not world.distributed:
        return t
    t = t.clone()
    dist.all_reduce(t)
    return t


def all_max_tensor(world: World, t: torch.Tensor) -> torch.Tensor:
    if not world.distributed:
        return t
    t = t.clone()
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return t


def sum_gradients(world: World, model: torch.nn.Module) -> torch.Tensor | None:
    """Sum every parameter's gradient over ranks in one flat buffer.

    A parameter without a gradient keeps ``grad = None``, as in one process. That matters:
    AdamW skips a ``None`` gradient but applies weight decay and advances its step count on a
    zero one, so filling in zeros shrank the HRM side every step the gate was shut (issue 12:
    0.994 of the single-process norm after 6 steps at lr 0.01, wd 0.1).

    Which parameters have a gradient follows from the model's switches and the gate, never from
    the data, so it is the same on every rank and each rank decides from its own flags without
    a host sync. The flags travel in the same all-reduce as the gradients (a missing gradient
    contributes zeros, so the buffer has one size on every rank); the returned 0-d device tensor
    is 1 when some rank disagreed, and the caller checks it once per log line.
    """
    if not world.distributed:
        return None
    params = [p for p in model.parameters() if p.requires_grad]
    present = [p.grad is not None for p in params]
    if not any(present):
        raise RuntimeError("sum_gradients: no parameter has a gradient")
    like = next(p.grad for p, ok in zip(params, present) if ok)
    pieces = [p.grad.reshape(-1).to(like.dtype) if ok else like.new_zeros(p.numel())
              for p, ok in zip(params, present)]
    flags = torch.tensor([float(ok) for ok in present], dtype=like.dtype).to(like.device, non_blocking=True)
    flat = torch.cat(pieces + [flags])
    dist.all_reduce(flat)
    offset = 0
    for p, ok in zip(params, present):
        n = p.numel()
        if ok:
            p.grad.copy_(flat[offset:offset + n].view_as(p.grad))
        offset += n
    counts = flat[offset:]
    return ((counts != 0) & (counts != world.world_size)).any().float()


def barrier(world: World) -> None:
    if world.distributed:
        dist.barrier()


def broadcast_object(world: World, obj):
    if not world.distributed:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
