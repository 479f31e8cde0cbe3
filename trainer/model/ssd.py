"""Mamba2's state-space duality (SSD) scan: chunked form for training, recurrent form for decoding.

Notation (per head h, group g = h // (H/G)):
    state_t = exp(dt_t * A) * state_{t-1} + dt_t * x_t B_t^T        state: [P, N]
    y_t     = state_t C_t
The chunked form splits the sequence into chunks of Q steps: inside a chunk the output is a
masked (Q x Q) "attention" with decay weights; across chunks only the [P, N] state is carried.
Both forms compute exactly the same function (tests check it to 1e-10 in float64).

Inputs are already discretised: ``dt`` is softplus(dt_raw + dt_bias) and ``A`` = -exp(A_log).
A length that is not a multiple of Q is padded *after* discretisation with dt = 0, which makes the
padded steps the identity on the state (decay exp(0) = 1, input 0), so the final state is exact.
All of it runs in fp32 (float64 when given float64) with autocast disabled: cumulative sums and
exponentials of decays are where bf16 would go wrong.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def segment_sums(a: torch.Tensor) -> torch.Tensor:
    """``out[..., i, j] = a[..., j+1] + ... + a[..., i]`` for j <= i, -inf above the diagonal.

    Built by a masked cumulative sum rather than ``cumsum[i] - cumsum[j]`` so that long chunks
    do not subtract two large, nearly equal numbers.
    """
    q = a.shape[-1]
    strict = torch.ones(q, q, dtype=torch.bool, device=a.device).tril(-1)
    grid = a.unsqueeze(-1).expand(*a.shape, q).masked_fill(~strict, 0.0)
    sums = grid.cumsum(dim=-2)
    causal = torch.ones(q, q, dtype=torch.bool, device=a.device).tril(0)
    return sums.masked_fill(~causal, float("-inf"))


def ssd_chunked(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                C: torch.Tensor, chunk_size: int,
                initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunked SSD scan.

    x: [b, l, h, p]; dt: [b, l, h] (positive); A: [h] (negative); B, C: [b, l, g, n];
    initial_state: [b, h, p, n] or None. Returns (y [b, l, h, p], final_state [b, h, p, n]) in
    the compute dtype (fp32, or float64 for float64 inputs). The D skip term is not included.

    B and C are shared by the r = h / g heads of a group, so the products with them are done on
    [r * p]-wide blocks of the group's heads (one larger matmul, no broadcast copies); only the
    decays, which differ per head, are applied per head.
    """
    b, l, h, p = x.shape
    g, n = B.shape[-2], B.shape[-1]
    r = h // g
    dtype = _compute_dtype(x)
    with torch.autocast(device_type=x.device.type, enabled=False):
        x, dt, A, B, C = (t.to(dtype) for t in (x, dt, A, B, C))
        dA = dt * A  # [b, l, h]
        xdt = x * dt.unsqueeze(-1)
        q = chunk_size
        pad = (-l) % q
        if pad:  # dt = 0 on padded steps: identity on the state, zero output contribution
            xdt = F.pad(xdt, (0, 0, 0, 0, 0, pad))
            dA = F.pad(dA, (0, 0, 0, pad))
            B = F.pad(B, (0, 0, 0, 0, 0, pad))
            C = F.pad(C, (0, 0, 0, 0, 0, pad))
        c = (l + pad) // q

        X = xdt.view(b, c, q, h, p).permute(0, 3, 1, 2, 4).contiguous()  # [b, h, c, q, p]
        Bg = B.view(b, c, q, g, n).permute(0, 3, 1, 2, 4).contiguous()  # [b, g, c, q, n]
        Cg = C.view(b, c, q, g, n).permute(0, 3, 1, 2, 4).contiguous()
        dA_cum = dA.view(b, c, q, h).permute(0, 3, 1, 2).cumsum(-1)  # [b, h, c, q]

        # 1. inside each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(cum_i - cum_j) x_j dt_j
        causal = torch.ones(q, q, dtype=torch.bool, device=x.device).tril()
        gaps = (dA_cum.unsqueeze(-1) - dA_cum.unsqueeze(-2)).masked_fill(~causal, float("-inf"))
        scores = (Cg @ Bg.transpose(-1, -2)).unsqueeze(2) * torch.exp(gaps).view(b, g, r, c, q, q)
        y = scores.view(b, h, c, q, q) @ X  # [b, h, c, q, p]

        # 2. state each chunk leaves behind, starting from zero: [b, g, c, n, r*p]
        decay_to_end = torch.exp(dA_cum[..., -1:] - dA_cum).unsqueeze(-1)  # [b, h, c, q, 1]
        Xd = (X * decay_to_end).view(b, g, r, c, q, p).permute(0, 1, 3, 4, 2, 5).reshape(b, g, c, q, r * p)
        chunk_states = Bg.transpose(-1, -2) @ Xd
        chunk_states = chunk_states.view(b, g, c, n, r, p).permute(0, 1, 4, 2, 3, 5).reshape(b, h, c, n * p)

        # 3. carry states across chunks (c is small: a dense [c+1, c+1] decay matrix)
        if initial_state is None:
            start = chunk_states.new_zeros(b, h, 1, n * p)
        else:
            start = initial_state.to(dtype).transpose(-1, -2).reshape(b, h, 1, n * p)
        chunk_states = torch.cat([start, chunk_states], dim=2)  # [b, h, c+1, n*p]
        decay_across = torch.exp(segment_sums(F.pad(dA_cum[..., -1], (1, 0))))  # [b, h, c+1, c+1]
        states = decay_across @ chunk_states  # state entering each chunk, then the final one
        final_state = states[:, :, -1].view(b, h, n, p).transpose(-1, -2)
        entering = states[:, :, :-1].view(b, g, r, c, n, p).permute(0, 1, 3, 4, 2, 5).reshape(b, g, c, n, r * p)

        # 4. contribution of the entering state: y_i += exp(cum_i) C_i . state
        y_off = (Cg @ entering).view(b, g, c, q, r, p)
        decay_from_start = torch.exp(dA_cum).view(b, g, r, c, q).permute(0, 1, 3, 4, 2).unsqueeze(-1)
        y_off = y_off * decay_from_start  # [b, g, c, q, r, p]
        y = y.view(b, g, r, c, q, p).permute(0, 3, 4, 1, 2, 5) + y_off.permute(0, 2, 3, 1, 4, 5)
        y = y.reshape(b, c * q, h, p)[:, :l]
    return y, final_state.contiguous()


def ssd_step(state: torch.Tensor, x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor,
             B: torch.Tensor, C: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of the recurrence. state [b, h, p, n]; x [b, h, p]; dt [b, h]; B, C [b, g, n].

    Returns (y [b, h, p], new_state) in the compute dtype.
    """
    dtype = _compute_dtype(x)
    with torch.autocast(device_type=x.device.type, enabled=False):
        state, x, dt, A, B, C = (t.to(dtype) for t in (state, x, dt, A, B, C))
        r = x.shape[1] // B.shape[1]
        Bh = B.repeat_interleave(r, dim=1)  # [b, h, n]
        Ch = C.repeat_interleave(r, dim=1)
        decay = torch.exp(dt * A)[..., None, None]
        state = state * decay + (x * dt.unsqueeze(-1)).unsqueeze(-1) * Bh.unsqueeze(-2)
        y = (state @ Ch.unsqueeze(-1)).squeeze(-1)
    return y, state


def ssd_recurrent(x: torch.Tensor, dt: torch.Tensor, A: torch.Tensor, B: torch.Tensor,
                  C: torch.Tensor,
                  initial_state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: the recurrence applied one position at a time (same signature as ssd_chunked)."""
    b, l, h, p = x.shape
    n = B.shape[-1]
    dtype = _compute_dtype(x)
    state = (x.new_zeros(b, h, p, n, dtype=dtype) if initial_state is None
             else initial_state.to(dtype))
    ys = []
    for t in range(l):
        y, state = ssd_step(state, x[:, t], dt[:, t], A, B[:, t], C[:, t])
        ys.append(y)
    y = torch.stack(ys, dim=1) if ys else x.new_zeros(b, 0, h, p, dtype=dtype)
    return y, state
