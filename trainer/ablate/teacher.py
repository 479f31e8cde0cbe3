"""Teacher-forced scores of holdout items: how well a model predicts the worked answer, per item.

Exact-match accuracy is 0 until a model gets every digit of a solution right, so small budgets
cannot tell arms apart on it. Given ``[bos] + prompt`` and the reference ``target + [eos]`` (the
corpus row, docs/design.md), each item gets

    target_nll      mean negative log-likelihood of the target tokens (nats/token; the context-free
                    baseline is the unigram entropy of the data, printed by every training run)
    token_accuracy  fraction of target tokens that are the model's argmax prediction

with the checkpoint's gate, exactly the positions the trainer's loss covers when
``loss_on_prompt = false``. Rows are right-padded: the decoder is causal and the HRM reads only
each row's prompt, so padding changes no scored position.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def teacher_forced(ev, items, batch_size: int = 32) -> list[dict]:
    """One record per item: ``{"id", "group", "tier", "target_nll", "token_accuracy"}``, in item order."""
    rows = []
    for it in items:
        prompt = ev.encode_prompt(it.prompt)
        target = (ev.encode_text(it.reference) + [ev.tokenizer.eos_id])[: max(1, ev.max_seq_len - len(prompt))]
        rows.append((prompt, target))
    out: list[dict | None] = [None] * len(items)
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]) + len(rows[i][1]))
    model = ev.model.eval()
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = order[start:start + batch_size]
            width = max(len(rows[i][0]) + len(rows[i][1]) for i in chunk)
            ids = torch.zeros((len(chunk), width), dtype=torch.long)
            labels = torch.full((len(chunk), width), -100, dtype=torch.long)
            prompt_lens = torch.zeros(len(chunk), dtype=torch.long)
            for r, i in enumerate(chunk):
                p, t = rows[i]
                ids[r, : len(p) + len(t)] = torch.tensor(p + t)
                labels[r, len(p) - 1: len(p) - 1 + len(t)] = torch.tensor(t)  # position p-1 predicts t[0]
                prompt_lens[r] = len(p)
            logits = model(ids.to(ev.device), prompt_lens.to(ev.device), gate_scale=ev.gate_scale).logits.float().cpu()
            logp = F.log_softmax(logits, dim=-1)
            for r, i in enumerate(chunk):
                mask = labels[r] != -100
                gold = labels[r][mask]
                nll = -logp[r][mask].gather(1, gold[:, None]).squeeze(1)
                hits = logits[r][mask].argmax(-1) == gold
                it = items[i]
                out[i] = {"id": it.id, "group": it.group or "", "tier": it.tier,
                          "values": {"target_nll": float(nll.mean()), "token_accuracy": float(hits.float().mean())}}
    return out  # type: ignore[return-value]
