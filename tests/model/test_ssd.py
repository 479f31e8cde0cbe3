"""The chunked SSD scan computes exactly the step-by-step recurrence."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from trainer.model.ssd import segment_sums, ssd_chunked, ssd_recurrent

CHUNK = 8


def inputs(length: int, seed: int = 0, b: int = 2, h: int = 4, p: int = 3, g: int = 2, n: int = 5,
           dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    rand = lambda *s: torch.randn(*s, generator=gen, dtype=dtype)  # noqa: E731
    x = rand(b, length, h, p)
    dt = F.softplus(rand(b, length, h))
    A = -torch.exp(rand(h))
    B, C = rand(b, length, g, n), rand(b, length, g, n)
    state = rand(b, h, p, n)
    return x, dt, A, B, C, state


@pytest.mark.parametrize("length", [1, 3, 7, 8, 9, 16, 21, 40])
def test_chunked_equals_recurrence(length):
    x, dt, A, B, C, _ = inputs(length)
    y_chunk, s_chunk = ssd_chunked(x, dt, A, B, C, CHUNK)
    y_ref, s_ref = ssd_recurrent(x, dt, A, B, C)
    assert y_chunk.shape == (2, length, 4, 3) and s_chunk.shape == (2, 4, 3, 5)
    assert (y_chunk - y_ref).abs().max() <= 1e-10
    assert (s_chunk - s_ref).abs().max() <= 1e-10


@pytest.mark.parametrize("length", [5, 8, 19])
def test_chunked_continues_from_carried_state(length):
    x, dt, A, B, C, state = inputs(length, seed=1)
    y_chunk, s_chunk = ssd_chunked(x, dt, A, B, C, CHUNK, initial_state=state)
    y_ref, s_ref = ssd_recurrent(x, dt, A, B, C, initial_state=state)
    assert (y_chunk - y_ref).abs().max() <= 1e-10
    assert (s_chunk - s_ref).abs().max() <= 1e-10


def test_splitting_a_sequence_and_carrying_the_state_changes_nothing():
    x, dt, A, B, C, _ = inputs(29, seed=2)
    y_all, s_all = ssd_chunked(x, dt, A, B, C, CHUNK)
    cut = 11  # not a chunk boundary
    y1, s1 = ssd_chunked(x[:, :cut], dt[:, :cut], A, B[:, :cut], C[:, :cut], CHUNK)
    y2, s2 = ssd_chunked(x[:, cut:], dt[:, cut:], A, B[:, cut:], C[:, cut:], CHUNK, initial_state=s1)
    assert (torch.cat([y1, y2], 1) - y_all).abs().max() <= 1e-10
    assert (s2 - s_all).abs().max() <= 1e-10


def test_chunk_size_does_not_change_the_result():
    x, dt, A, B, C, state = inputs(23, seed=3)
    ref = ssd_chunked(x, dt, A, B, C, 1, initial_state=state)
    for q in (4, 8, 32):
        y, s = ssd_chunked(x, dt, A, B, C, q, initial_state=state)
        assert (y - ref[0]).abs().max() <= 1e-10 and (s - ref[1]).abs().max() <= 1e-10


def test_gradients_of_chunked_and_recurrent_forms_agree():
    leaves = [t.requires_grad_() for t in inputs(13, seed=4)]
    weights = torch.randn(2, 13, 4, 3, dtype=torch.float64)
    grads = []
    for scan in (lambda *a: ssd_chunked(*a[:5], CHUNK, initial_state=a[5]),
                 lambda *a: ssd_recurrent(*a[:5], initial_state=a[5])):
        y, s = scan(*leaves)
        grads.append(torch.autograd.grad((y * weights).sum() + s.sum(), leaves))
    for a, b in zip(*grads):
        assert (a - b).abs().max() <= 1e-10


def test_segment_sums():
    a = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    s = segment_sums(a)
    expected = torch.tensor([[0.0, -float("inf"), -float("inf")],
                             [2.0, 0.0, -float("inf")],
                             [5.0, 3.0, 0.0]], dtype=torch.float64)
    assert torch.equal(s, expected)


def test_low_precision_inputs_are_scanned_in_fp32_under_autocast():
    x, dt, A, B, C, _ = inputs(17, seed=5, dtype=torch.float32)
    ref, _ = ssd_recurrent(*(t.double() for t in (x, dt, A, B, C)))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y, state = ssd_chunked(x.bfloat16(), dt, A, B.bfloat16(), C.bfloat16(), CHUNK)
    assert y.dtype == torch.float32 and state.dtype == torch.float32
    # only the bf16 rounding of the inputs separates it from the float64 reference
    assert (y.double() - ref).abs().max() / ref.abs().max() < 3e-2
