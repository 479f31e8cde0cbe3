"""``--export-jsonl DIR``: a plan in the blueprint trainer's format, for blueprint-era tooling.

Writes ``train.jsonl`` and ``val.jsonl`` (one line per plan position, in plan order) and
``meta.json``. Each line is ``{"encoder_ids", "decoder_input_ids", "labels"}``:

    encoder_ids        the row's prompt ids (what the HRM encodes)
    labels             the row's target ids (ends with eos for question/answer rows)
    decoder_input_ids  [bos] + labels[:-1]   (teacher forcing: same length as labels)

A row without target tokens (a one-token text window) gets ``labels = [eos]`` so every line has
something to predict; ``meta.json`` counts them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from corpus.atomic import atomic_path, write_bytes_atomic
from corpus.mixing.reader import SPLITS, Plan, PlanReader

FORMAT = "hrm-lm jsonl: encoder_ids (prompt), decoder_input_ids ([bos] + labels[:-1]), labels (target)"


def export_jsonl(plan: Plan, out_dir: str | Path) -> dict:
    """Write the three files into ``out_dir``; returns the meta dict."""
    import orjson

    out_dir = Path(out_dir)
    tok = plan.tokenizer
    bos = np.array([tok.bos_id], dtype=np.int32)
    eos = np.array([tok.eos_id], dtype=np.int32)
    counts: dict[str, dict[str, int]] = {}
    filled: dict[str, int] = {}
    for split in SPLITS:
        per_source = {c["source"]: 0 for c in plan.sources}
        empty = 0
        with atomic_path(out_dir / f"{split}.jsonl") as tmp, open(tmp, "wb") as f:
            for sample in PlanReader(plan, split):
                prompt = sample.tokens[:sample.prompt_len]
                labels = sample.tokens[sample.prompt_len:]
                if len(labels) == 0:
                    labels, empty = eos, empty + 1
                decoder = np.concatenate([bos, labels[:-1]])
                f.write(orjson.dumps({"encoder_ids": prompt, "decoder_input_ids": decoder, "labels": labels},
                                     option=orjson.OPT_SERIALIZE_NUMPY))
                f.write(b"\n")
                per_source[sample.source] += 1
        counts[split] = per_source
        filled[split] = empty
    meta = {
        "format": FORMAT,
        "plan": plan.id,
        "mix": plan.name,
        "manifest_sha256": plan.manifest_sha,
        "tokenizer_sha256": plan.tokenizer_sha,
        "vocab_size": tok.vocab_size,
        "pad_id": tok.pad_id,
        "bos_id": tok.bos_id,
        "eos_id": tok.eos_id,
        "max_seq_len": plan.max_seq_len,
        "seed": plan.seed,
        "train_samples": sum(counts["train"].values()),
        "val_samples": sum(counts["val"].values()),
        "sources": [{"name": c["source"], "version": c["version"], "weight": c["weight"],
                     "train": counts["train"][c["source"]], "val": counts["val"][c["source"]]}
                    for c in plan.sources],
        "empty_targets_filled_with_eos": filled,
    }
    write_bytes_atomic(out_dir / "meta.json", (json.dumps(meta, indent=1) + "\n").encode())
    return meta
