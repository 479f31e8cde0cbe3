"""trainer/step.py on one process: the update it takes, and what it reads back to the host.

A GPU runs ahead of the host until something reads a value back; the trainer must do that once
per log line, not per step. CPU tensors cannot show a stall, but every such read goes through
``aten::_local_scalar_dense`` (``.item()``, ``float()``, ``bool()``, ``int()``) or
``Tensor.tolist``, so the test records those. Integer reads of the CPU batch (label counts,
the longest prompt) are by design; a floating-point or boolean read is a sync on a GPU.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from trainer.data import Batch
from trainer.distributed import World
from trainer.model import HRMMamba2LM, ModelConfig
from trainer.optim import build_optimizer
from trainer.step import train_step

torch.set_num_threads(1)


class HostReads(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.dtypes: list[torch.dtype] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            self.dtypes.append(args[0].dtype)
        return func(*args, **(kwargs or {}))


def model_and_batch(seed=0):
    torch.manual_seed(seed)
    cfg = ModelConfig(vocab_size=61, d_model=32, n_layers=2, d_state=8, headdim=16, chunk_size=8, d_hrm=16,
                      hrm_slots=2, hrm_heads=2, use_halting=True, deep_supervision=True)
    model = HRMMamba2LM(cfg)
    with torch.no_grad():
        model.bridge.memory_proj.weight.normal_(0.0, 0.3)
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(1, 61, (4, 17), generator=g)
    labels = torch.cat([ids[:, 1:], torch.full((4, 1), -100)], 1)
    batch = Batch(ids, torch.tensor([3, 5, 8, 11]), labels, ["a", "b", "c", "d"], [0, 1, 2, 3], 68, 68)
    return model, batch


def test_a_step_reads_no_float_back_to_the_host(monkeypatch):
    """With fused AdamW (the trainer's choice on CUDA) even the non-finite check stays on the
    device. (Plain AdamW reads its CPU step counters and the skip flag: fine on CPU.)"""
    model, batch = model_and_batch()
    opt = build_optimizer(model, "adamw", 1e-3, 0.1, fused=True)
    tolists = []
    original = torch.Tensor.tolist
    monkeypatch.setattr(torch.Tensor, "tolist", lambda t: tolists.append(t.dtype) or original(t))
    for _ in range(2):  # the second step has optimizer state
        with HostReads() as reads:
            out, _ = train_step(model, opt, None, World(), torch.device("cpu"), batch, 1e-3, 0.5, 1.0, nullcontext)
        assert tolists == []
        assert reads.dtypes and all(d == torch.int64 for d in reads.dtypes), reads.dtypes
    assert out.terms.shape == (5,) and not bool(out.skipped)


def test_one_process_update_is_the_model_loss_gradient():
    """The rank-share weighting reduces to the model's own loss in one process."""
    model, batch = model_and_batch()
    reference, _ = model_and_batch()
    opt = build_optimizer(model, "adamw", 1e-2, 0.0)
    ref_opt = build_optimizer(reference, "adamw", 1e-2, 0.0)
    out, share = train_step(model, opt, None, World(), torch.device("cpu"), batch, 1e-2, 0.5, 0.0, nullcontext)
    assert (share.lm, share.memory, share.rows) == (1.0, 1.0, 1.0)
    ref = reference(batch.input_ids, batch.prompt_lens, batch.labels, gate_scale=0.5)
    ref.loss.backward()
    ref_opt.step()
    assert torch.allclose(out.terms, torch.stack([ref.loss, ref.lm_loss, ref.ds_loss, ref.halt_loss,
                                                  ref.lm_mem_loss]).detach().float(), rtol=1e-6)
    for (name, a), b in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7), name
