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
from typing import Callable, Iterator

import numpy as np

from corpus.atomic import atomic_path, write_bytes_atomic
from corpus.mixing.reader import SPLITS, Plan, PlanReader

FORMAT = "hrm-lm jsonl: encoder_ids (prompt), decoder_input_ids ([bos] + labels[:-1]), labels (target)"


def _lines(plan: Plan, split: str, limit: int | None = None) -> Iterator[tuple[bytes, str, bool]]:
    """``(json line, source, target was empty)`` for the first ``limit`` positions of ``split``."""
    import orjson

    tok = plan.tokenizer
    bos = np.array([tok.bos_id], dtype=np.int32)
    eos = np.array([tok.eos_id], dtype=np.int32)
    for i, sample in enumerate(PlanReader(plan, split)):
        if limit is not None and i >= limit:
            return
        prompt = sample.tokens[:sample.prompt_len]
        labels = sample.tokens[sample.prompt_len:]
        empty = len(labels) == 0
        if empty:
            labels = eos
        decoder = np.concatenate([bos, labels[:-1]])
        line = orjson.dumps({"encoder_ids": prompt, "decoder_input_ids": decoder, "labels": labels},
                            option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
        yield line, sample.source, empty


def estimate(plan: Plan, limit: int | None = None, sample: int = 256) -> dict[str, int]:
    """What an export would write, before writing it: lines per split and bytes, extrapolated
    by token count from the first ``sample`` lines of each split (JSON digits make bytes track
    tokens)."""
    import pyarrow.parquet as pq

    lines: dict[str, int] = {}
    tokens = seen_tokens = seen_bytes = 0
    for split in SPLITS:
        n_tokens = np.asarray(pq.read_table(plan.dir / f"plan-{split}.parquet", columns=["n_tokens"])
                              .column("n_tokens"), dtype=np.int64)
        lines[split] = len(n_tokens) if limit is None else min(limit, len(n_tokens))
        tokens += int(n_tokens[:lines[split]].sum())
        for (line, _, _), n in zip(_lines(plan, split, sample), n_tokens):
            seen_tokens, seen_bytes = seen_tokens + int(n), seen_bytes + len(line)
    per_token = seen_bytes / max(1, seen_tokens)
    return {"train": lines["train"], "val": lines["val"], "lines": sum(lines.values()), "tokens": tokens,
            "bytes": int(per_token * tokens)}


def export_jsonl(plan: Plan, out_dir: str | Path, limit: int | None = None,
                 progress: Callable[[int], None] | None = None) -> dict:
    """Write the three files into ``out_dir`` (the first ``limit`` positions of each split when
    given); returns the meta dict. ``progress(n)`` is called with each line written."""
    out_dir = Path(out_dir)
    tok = plan.tokenizer
    counts: dict[str, dict[str, int]] = {}
    filled: dict[str, int] = {}
    for split in SPLITS:
        per_source = {c["source"]: 0 for c in plan.sources}
        empty = 0
        with atomic_path(out_dir / f"{split}.jsonl") as tmp, open(tmp, "wb") as f:
            for line, source, was_empty in _lines(plan, split, limit):
                f.write(line)
                per_source[source] += 1
                empty += was_empty
                if progress is not None:
                    progress(1)
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
                     "chosen": c.get("chosen"), "input_fingerprint": c.get("input_fingerprint"),
                     "train": counts["train"][c["source"]], "val": counts["val"][c["source"]]}
                    for c in plan.sources],
        "empty_targets_filled_with_eos": filled,
        "limit_per_split": limit,
    }
    write_bytes_atomic(out_dir / "meta.json", (json.dumps(meta, indent=1) + "\n").encode())
    return meta
