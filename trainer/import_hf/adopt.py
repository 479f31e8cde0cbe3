"""A run whose ``init_from`` is an imported checkpoint takes its tokenizer and architecture from it.

The weights fix the vocabulary (rows and tokens) and every size, so the manifest's tokenizer and
``[model]`` sizes (or ``--scale smoke``'s small model) cannot apply: the run's plan is tokenized
with the import's tokenizer (the plan id follows) and the model is the import's, HRM included.
Only the switches that create no parameters (cycles, deep supervision, halting ...) still come
from ``[model]``. Each change is printed at the start of the run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpus.errors import UserError


def adopt_import(cfg) -> dict[str, Any] | None:
    """Point ``cfg``'s plan at the import's tokenizer and ``cfg.model`` at its architecture, when
    ``init_from`` names an import; returns the import record (None otherwise)."""
    from trainer.import_hf import imported_record
    from trainer.resume import resolve_init_from
    from trainer.session import RUNTIME_MODEL_KEYS

    if not cfg.train.init_from:
        return None
    try:
        weights = resolve_init_from(cfg.train.init_from, Path(cfg.train.runs_dir))
    except UserError:
        return None  # said where the run starts (trainer.resume), with what to do
    record = imported_record(weights)
    if record is None:
        return None
    tokenizer = (weights.parent / "tokenizer.json").resolve()
    data = cfg.manifest.setdefault("data", {})
    if str(data.get("tokenizer")) != str(tokenizer):
        cfg.notes.append(f"init_from {cfg.train.init_from} is an imported checkpoint: the plan uses its "
                         f"tokenizer {tokenizer} (not {data.get('tokenizer')})")
        data["tokenizer"] = str(tokenizer)
    architecture = {k: v for k, v in record["model_config"].items() if k not in RUNTIME_MODEL_KEYS and k != "vocab_size"}
    ignored = sorted(k for k, v in cfg.model.items() if k in architecture and v is not None and v != architecture[k])
    if cfg.model.get("preset") not in (None, "default"):
        ignored.insert(0, f"preset {cfg.model['preset']}")
    if ignored:
        cfg.notes.append(f"init_from {cfg.train.init_from}: the model is the import's "
                         f"(d_model {architecture['d_model']}, {architecture['n_layers']} layers, d_hrm "
                         f"{architecture['d_hrm']}); [model] {', '.join(ignored)} ignored")
    runtime = {k: v for k, v in cfg.model.items() if k in RUNTIME_MODEL_KEYS and v is not None}
    cfg.model = {"preset": "default", **architecture, **runtime}
    return record


def model_vocab(record: dict[str, Any] | None, tokenizer_vocab: int) -> int:
    """The embedding rows of the run's model: the import's (maybe padded), else the tokenizer's."""
    if record is None:
        return tokenizer_vocab
    tokens = record["model_config"].get("output_vocab") or record["model_config"]["vocab_size"]
    if tokens != tokenizer_vocab:
        raise UserError(f"the plan's tokenizer has {tokenizer_vocab} tokens, the imported model {tokens}")
    return int(record["model_config"]["vocab_size"])
