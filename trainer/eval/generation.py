"""Batched generation with the recurrent step: prompts of any lengths, constant work per token.

    prompts (token ids, any lengths) ─► sorted by length, cut into batches
        batch: prefill each distinct length in the chunked form ─► merge the recurrent states
               ─► one ``model.step`` per new token for the rows still going (greedy /
                  temperature / top-k / top-p via ``trainer.model.sampling``); a row that emits
                  EOS leaves the batch, so finished rows cost nothing

Rows never see padding: each prompt is prefilled on its own length, so a row's tokens are the
same as ``model.generate`` on that prompt alone (the tests check it). A row's output stops
before its EOS. ``text_generator`` wraps this into the suites' ``generate_fn(prompts) -> texts``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

__all__ = ["Sampling", "generate_ids", "truncate_at", "text_generator", "GREEDY"]


@dataclass(frozen=True)
class Sampling:
    temperature: float = 0.0  # <= 0: greedy
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None  # for temperature > 0


GREEDY = Sampling()


def _merge(states: list, memories: list):
    """Concatenate per-group DecodeStates along the batch."""
    from trainer.model import DecodeState
    from trainer.model.mamba2 import MixerState

    layers = [MixerState(conv=torch.cat([s.layers[i].conv for s in states]),
                         ssm=torch.cat([s.layers[i].ssm for s in states]))
              for i in range(len(states[0].layers))]
    memory = None if memories[0] is None else torch.cat(memories)
    return DecodeState(layers=layers, memory=memory)


def _select(state, index: torch.Tensor):
    """The rows ``index`` of a DecodeState."""
    from trainer.model import DecodeState
    from trainer.model.mamba2 import MixerState

    return DecodeState(layers=[MixerState(conv=s.conv[index], ssm=s.ssm[index]) for s in state.layers],
                       memory=None if state.memory is None else state.memory[index])


@torch.no_grad()
def _generate_batch(model, prompts: list[list[int]], max_new_tokens: int, sampling: Sampling,
                    eos_id: int | None, gate_scale: float, device: torch.device,
                    generator: torch.Generator | None) -> list[list[int]]:
    from trainer.model.sampling import sample_next

    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    order: list[int] = []
    logits_parts, states, memories = [], [], []
    for length in sorted(groups):
        rows = groups[length]
        ids = torch.tensor([prompts[i] for i in rows], dtype=torch.long, device=device)
        logits, state = model.prefill(ids, gate_scale)
        order += rows
        logits_parts.append(logits)
        states.append(state)
        memories.append(state.memory)
    logits = torch.cat(logits_parts)
    state = _merge(states, memories)
    out: list[list[int]] = [[] for _ in order]
    alive = list(range(len(order)))  # rows of ``out`` still generating, in batch order
    for step in range(max_new_tokens):
        token = sample_next(logits, sampling.temperature, sampling.top_k, sampling.top_p, generator)
        tokens = token.tolist()
        keep = [k for k, t in enumerate(tokens) if t != eos_id]
        for k in keep:
            out[alive[k]].append(tokens[k])
        if step == max_new_tokens - 1 or not keep:
            break
        if len(keep) < len(alive):  # drop finished rows: later steps cost only what is left
            index = torch.tensor(keep, device=device)
            token, state, alive = token[index], _select(state, index), [alive[k] for k in keep]
        logits = model.step(token, state)
    result: list[list[int]] = [[] for _ in prompts]
    for r, i in enumerate(order):
        result[i] = out[r]
    return result


def generate_ids(model, prompts: Sequence[Sequence[int]], max_new_tokens: int, *,
                 sampling: Sampling = GREEDY, eos_id: int | None = None, gate_scale: float = 1.0,
                 batch_size: int = 32, device: torch.device | str = "cpu",
                 progress: Callable[[int, int], None] | None = None) -> list[list[int]]:
    """New tokens (EOS and after dropped) for every prompt, in input order."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    if any(len(p) == 0 for p in prompts):
        raise ValueError("every prompt needs at least one token (the bos)")
    device = torch.device(device)
    generator = None
    if sampling.temperature > 0:
        generator = torch.Generator(device=device).manual_seed(sampling.seed if sampling.seed is not None else 0)
    order = sorted(range(len(prompts)), key=lambda i: (len(prompts[i]), i))
    result: list[list[int]] = [[] for _ in prompts]
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            outs = _generate_batch(model, [list(prompts[i]) for i in chunk], max_new_tokens, sampling, eos_id,
                                   gate_scale, device, generator)
            for i, toks in zip(chunk, outs):
                result[i] = toks
            if progress is not None:
                progress(min(start + batch_size, len(order)), len(order))
    finally:
        model.train(was_training)
    return result


def truncate_at(text: str, stops: Sequence[str]) -> str:
    """``text`` up to the first of ``stops`` (HumanEval-style stop sequences)."""
    cut = len(text)
    for stop in stops:
        at = text.find(stop)
        if at != -1:
            cut = min(cut, at)
    return text[:cut]


def text_generator(ev, max_new_tokens: int, *, sampling: Sampling = GREEDY, batch_size: int = 32,
                   progress: Callable[[int, int], None] | None = None) -> Callable[[list[str]], list[str]]:
    """``generate_fn(prompts) -> texts`` for an :class:`trainer.eval.load.Evaluable`: each prompt
    rendered as a corpus row (``[bos] + encode``), continued until EOS or ``max_new_tokens``."""

    def generate_fn(prompts: list[str]) -> list[str]:
        ids = [ev.encode_prompt(p) for p in prompts]
        new = generate_ids(ev.model, ids, max_new_tokens, sampling=sampling, eos_id=ev.tokenizer.eos_id,
                           gate_scale=ev.gate_scale, batch_size=batch_size, device=ev.device, progress=progress)
        return [ev.decode(toks) for toks in new]

    return generate_fn
