"""Perplexity and bits per byte on held-out wiki windows.

Every window is scored as the trainer's validation scores a row (``loss_on_prompt``): token ``t``
predicts token ``t + 1``, so ``tokens[1:]`` are scored, the HRM reads the window's prompt part,
and the gate is the checkpoint's.

    nll            = Σ -log p(token) / scored tokens            (nats per token)
    ppl            = exp(nll)
    bits_per_byte  = Σ -log p(token) / (ln 2 · Σ bytes(token))   bytes of the scored tokens' text

A byte-level BPE token stands for a fixed byte string (its vocabulary entry through GPT-2's
byte-to-unicode table), so the bytes of the scored tokens add up to the UTF-8 length of the text
they spell; special tokens count 0 bytes. ``--limit N``: the first N windows.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from trainer.eval.datasets import DataMissing, DataSources, Window
from trainer.eval.suites.base import Options, SuiteResult, Timer, skipped

NAME = "ppl"
NllFn = Callable[[list[Window]], list[np.ndarray]]  # per window: -log p of tokens[1:], in nats


@lru_cache(maxsize=1)
def _byte_decoder() -> dict[str, int]:
    """GPT-2's unicode character -> byte table (the inverse of bytes_to_unicode)."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs)}


def token_byte_lengths(tokenizer) -> np.ndarray:
    """Bytes each token id stands for (a ``tokenizers.Tokenizer``); special tokens 0."""
    table = _byte_decoder()
    vocab = tokenizer.get_vocab(with_added_tokens=True)
    special = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
    lengths = np.zeros(max(vocab.values()) + 1, dtype=np.int64)
    for token, index in vocab.items():
        if token in special:
            continue
        if all(ch in table for ch in token):
            lengths[index] = len(token)
        else:  # not a byte-level vocabulary entry: its decoded text
            lengths[index] = len(tokenizer.decode([index]).encode("utf-8"))
    return lengths


def evaluate(windows: list[Window], nll_fn: NllFn, token_bytes: Sequence[int]) -> SuiteResult:
    nlls = nll_fn(windows)
    if len(nlls) != len(windows):
        raise ValueError(f"ppl: nll_fn returned {len(nlls)} arrays for {len(windows)} windows")
    token_bytes = np.asarray(token_bytes)
    total, count, n_bytes = 0.0, 0, 0
    records = []
    for w, nll in zip(windows, nlls):
        nll = np.asarray(nll, dtype=np.float64)
        if len(nll) != len(w.tokens) - 1:
            raise ValueError(f"ppl: window {w.id}: {len(nll)} losses for {len(w.tokens) - 1} scored tokens")
        b = int(token_bytes[np.asarray(w.tokens[1:], dtype=np.int64)].sum())
        total += float(nll.sum())
        count += len(nll)
        n_bytes += b
        records.append({"id": w.id, "tokens": len(nll), "bytes": b, "nll": float(nll.mean())})
    if count == 0:
        raise ValueError("ppl: no tokens to score")
    nll_mean = total / count
    metrics = {"nll": nll_mean, "ppl": math.exp(nll_mean), "bits_per_byte": total / (math.log(2) * max(1, n_bytes)),
               "tokens": count, "bytes": n_bytes, "windows": len(windows)}
    return SuiteResult(NAME, metrics=metrics, records=records)


def model_nll_fn(ev, batch_size: int = 16, progress=None) -> NllFn:
    """Per-token NLLs from the model, windows batched right-padded (padding is never scored)."""
    import torch
    import torch.nn.functional as F

    @torch.no_grad()
    def nll_fn(windows: list[Window]) -> list[np.ndarray]:
        out: list[np.ndarray] = [np.zeros(0)] * len(windows)
        order = sorted(range(len(windows)), key=lambda i: len(windows[i].tokens))
        model = ev.model
        was_training = model.training
        model.eval()
        try:
            for start in range(0, len(order), batch_size):
                chunk = order[start:start + batch_size]
                width = max(len(windows[i].tokens) for i in chunk)
                ids = torch.full((len(chunk), width), ev.tokenizer.pad_id, dtype=torch.long)
                for r, i in enumerate(chunk):
                    ids[r, :len(windows[i].tokens)] = torch.tensor(windows[i].tokens)
                lens = torch.tensor([windows[i].prompt_len for i in chunk])
                logits = model(ids.to(ev.device), lens.to(ev.device), gate_scale=ev.gate_scale).logits.float()
                losses = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:].to(ev.device), reduction="none")
                for r, i in enumerate(chunk):
                    out[i] = losses[r, :len(windows[i].tokens) - 1].double().cpu().numpy()
                if progress is not None:
                    progress(min(start + batch_size, len(order)), len(order))
        finally:
            model.train(was_training)
        return out

    return nll_fn


def run(ev, sources: DataSources, options: Options) -> SuiteResult:
    from trainer.eval.datasets import load_windows

    try:
        windows, where = load_windows(sources, ev, options.limit)
    except DataMissing as exc:
        return skipped(NAME, str(exc))
    with Timer() as t:
        result = evaluate(windows, model_nll_fn(ev, max(1, options.batch_size // 2), options.tick("ppl")),
                          token_byte_lengths(ev.tokenizer.tokenizer))
    result.data, result.seconds = where, t.seconds
    return result
