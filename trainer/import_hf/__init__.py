"""A pretrained Mamba2 (Hugging Face hub id or local directory) as a run directory.

    ID_OR_DIR ─► config.json ─► layouts.detect: our ModelConfig, key renames, refusals
        │        *.safetensors | pytorch_model.bin ─► renamed decoder weights
        │        tokenizer (the checkpoint's, --tokenizer, or GPT-NeoX for mamba_ssm) ─► specials mapped
        ▼
    runs/NAME/best-model/{model.pt, tokenizer.json (+ .specials.json), config.json, import.json,
                          checksums.json}

The HRM is added shut: its memory projection is zero (trainer/model/bridge.py), so the run's
function is the checkpoint's whatever the gate, and stage A from it starts from the checkpoint's
loss. A padded vocabulary (mamba_ssm pads 50,277 tokens to 50,288 rows) is kept, and
``output_vocab`` masks the extra rows so they are never produced. ``init_from``,
``trainer.eval``, ``trainer.generate`` and the lm-eval adapter read the directory as they read a
trained run's best model.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from corpus.errors import UserError

IMPORT_FILE = "import.json"  # beside best-model/model.pt: what was imported, from where
NEOX_TOKENIZER = "EleutherAI/gpt-neox-20b"  # what mamba_ssm's checkpoints were trained with
HRM_KEYS = ("hrm_enabled", "d_hrm", "hrm_slots", "hrm_heads", "hrm_layers", "hrm_mlp_ratio", "h_cycles",
            "l_steps", "bridge_layer")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def fetch(source: str, revision: str | None = None) -> Path:
    """A local directory, or the hub snapshot of ``source`` (config + weights + tokenizer files)."""
    path = Path(source).expanduser()
    if path.is_dir():
        return path
    if path.exists() or source.startswith((".", "/", "~")) or source.count("/") != 1:
        raise UserError(f"{source}: not a directory nor a hub id (owner/name)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, revision=revision, allow_patterns=[
            "config.json", "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin",
            "pytorch_model.bin.index.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]))
    except Exception as exc:  # noqa: BLE001 - offline, unknown repo: one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
        raise UserError(f"{source}: cannot fetch from the hub ({type(exc).__name__}: {first}); offline, "
                        f"pass a local directory (save_pretrained or a hub snapshot)") from None


def read_weights(directory: Path) -> dict[str, Any]:
    """Every tensor of the checkpoint: safetensors (single or sharded) or pytorch_model*.bin."""
    import torch

    files = sorted(directory.glob("*.safetensors")) or sorted(directory.glob("pytorch_model*.bin"))
    if not files:
        raise UserError(f"{directory}: no weights (expected {' or '.join(WEIGHT_FILES)}, or shards of them)")
    state: dict[str, Any] = {}
    for f in files:
        try:
            if f.suffix == ".safetensors":
                try:
                    from safetensors.torch import load_file
                except ImportError:
                    raise UserError(f"{f}: reading safetensors needs the hf extra (pip install -e '.[hf]')") from None

                state.update(load_file(str(f)))
            else:
                state.update(torch.load(f, map_location="cpu", weights_only=True))
        except Exception as exc:  # noqa: BLE001
            raise UserError(f"{f}: unreadable weights ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    return state


def convert(state: dict[str, Any], layout, where: str) -> dict[str, Any]:
    """The checkpoint's tensors under our decoder's names (a conv without bias gets zeros)."""
    import torch

    out: dict[str, Any] = {}
    ignored = []
    for key, tensor in state.items():
        ours = layout.rename(key)
        if ours is None:
            ignored.append(key)
        else:
            out[ours] = tensor
    if ignored:
        raise UserError(f"{where}: parameters this model has no place for: {', '.join(sorted(ignored)[:4])}"
                        + (f" and {len(ignored) - 4} more" if len(ignored) > 4 else ""))
    for i in range(layout.model["n_layers"]):
        bias = f"decoder.layers.{i}.mixer.conv1d.bias"
        weight = out.get(f"decoder.layers.{i}.mixer.conv1d.weight")
        if bias not in out and weight is not None:
            out[bias] = torch.zeros(weight.shape[0], dtype=weight.dtype)
    if "decoder.lm_head.weight" not in out and "decoder.embedding.weight" in out:
        out["decoder.lm_head.weight"] = out["decoder.embedding.weight"]  # tied: saved once
    return out


def build_model(layout, tokenizer_vocab: int, hrm: dict[str, Any], weights: dict[str, Any], where: str,
                seed: int = 0):
    """Our model with the decoder's weights and a fresh HRM whose memory projection is zero."""
    import torch

    from trainer.model import HRMMamba2LM, ModelConfig

    rows = layout.model["vocab_size"]
    if tokenizer_vocab > rows:
        raise UserError(f"{where}: the tokenizer has {tokenizer_vocab} tokens, the embedding only {rows} rows")
    try:
        cfg = ModelConfig(**layout.model, output_vocab=tokenizer_vocab if tokenizer_vocab < rows else 0, **hrm)
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None
    torch.manual_seed(seed)
    model = HRMMamba2LM(cfg)
    model_keys = set(model.state_dict())
    missing = sorted(k for k in model_keys if k.startswith("decoder.") and k not in weights)
    if missing:
        raise UserError(f"{where}: the checkpoint lacks {', '.join(missing[:4])}"
                        + (f" and {len(missing) - 4} more" if len(missing) > 4 else ""))
    with torch.no_grad():
        own = model.state_dict()
        for key, tensor in weights.items():
            if own[key].shape != tensor.shape:
                raise UserError(f"{where}: {key} has shape {tuple(tensor.shape)}, the config implies "
                                f"{tuple(own[key].shape)}")
            own[key].copy_(tensor.to(own[key].dtype))
    if cfg.hrm_enabled:
        assert not model.bridge.memory_proj.weight.any(), "the HRM must start shut"
    return model


def import_checkpoint(source: str, out: Path, tokenizer: str | None = None, revision: str | None = None,
                      hrm: dict[str, Any] | None = None, dtype: str = "float32", say=print) -> Path:
    """Convert ``source`` into the run directory ``out``; returns its ``best-model`` directory."""
    import torch

    from corpus.tokenizer import load_tokenizer
    from trainer.checkpoint import BEST, Checkpoints
    from trainer.import_hf.layouts import detect

    out = Path(out)
    if (out / BEST).exists():
        raise UserError(f"{out / BEST} exists: choose another --out (an import never overwrites a run)")
    directory = fetch(source, revision)
    config_file = directory / "config.json"
    try:
        config = json.loads(config_file.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{config_file}: unreadable ({exc})") from None
    layout = detect(config, str(config_file))
    tok_source = tokenizer or (str(directory) if (directory / "tokenizer.json").is_file() else None)
    if tok_source is None:
        if layout.name != "mamba_ssm":
            raise UserError(f"{directory}: no tokenizer.json; pass --tokenizer (a tokenizer.json, directory or hub id)")
        tok_source = NEOX_TOKENIZER
    info = load_tokenizer(tok_source, revision=None)
    weights = convert(read_weights(directory), layout, str(directory))
    model = build_model(layout, info.vocab_size, hrm or {}, weights, str(directory))
    target = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
    model.to(target)
    cfg = model.cfg
    record = {"source": source, "revision": revision, "directory": str(directory), "layout": layout.name,
              "declared_vocab": layout.declared_vocab, "embedding_rows": cfg.vocab_size,
              "tokenizer": tok_source, "tokenizer_vocab": info.vocab_size, "tokenizer_sha": info.sha256,
              "specials": dict(info.specials), "dtype": dtype, "model_config": asdict(cfg)}
    weights_file = {"model": model.state_dict(), "model_config": asdict(cfg), "step": 0, "gate_scale": 0.0,
                    "imported": json.dumps(record)}
    files = {"config.json": json.dumps({"imported": record, "model_config": asdict(cfg)}, indent=2).encode(),
             IMPORT_FILE: (json.dumps(record, indent=2) + "\n").encode(), **info.files("tokenizer.json")}
    out.mkdir(parents=True, exist_ok=True)
    best = Checkpoints(out, warn=say).save_best(weights_file, files)
    n = sum(p.numel() for p in model.decoder.parameters())
    padded = f", {cfg.vocab_size - info.vocab_size} padding rows masked" if cfg.output_vocab else ""
    say(f"imported {source} ({layout.name} layout): {cfg.n_layers} layers, d_model {cfg.d_model}, "
        f"{n / 1e6:.1f}M decoder parameters, vocabulary {info.vocab_size}{padded}; HRM added shut -> {best}")
    return best


def imported_record(model_file: Path) -> dict[str, Any] | None:
    """The import record beside a weights file (``best-model/import.json``), None for a trained run."""
    path = Path(model_file).parent / IMPORT_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"{path}: unreadable ({exc})") from None
