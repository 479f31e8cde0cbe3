"""A checkpoint, ready to evaluate: model, tokenizer, gate scale and where the run lives.

    RUN_OR_CHECKPOINT ─► runs/<name>/best-model/model.pt      (a run: best model when there is one,
                      │  runs/<name>/checkpoints/{final,step_N}.pt    else the newest verified checkpoint)
                      ▼
    model.pt {"model", "model_config", "step", "config" | config.json beside it, "plan_id"}
                      ▼
    Evaluable(model, tokenizer, gate_scale, step, tag, run_dir, plan_id, data_root, max_seq_len)

The tokenizer is the one the run trained with: ``--tokenizer``, else ``tokenizer.json`` beside
the weights (best-model), else the plan's tokenizer from the catalog, else the run's
best-model copy; its vocabulary must match the model's. The HRM gate is the trainer's schedule
at the checkpoint (``gate_scale(step - 1, warmup, ramp)``, exactly what its validation used).
Prompts are rendered as corpus rows are: ``[bos] + encode(prompt)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from corpus.errors import UserError

__all__ = ["Evaluable", "load_evaluable", "resolve_checkpoint", "model_from_state", "checkpoint_tag"]

DEFAULT_MAX_SEQ_LEN = 512


@dataclass
class Evaluable:
    """Everything a suite needs from a checkpoint (or from a live training session)."""

    model: Any  # trainer.model.HRMMamba2LM, in eval mode
    tokenizer: Any  # corpus.tokenizer.TokenizerInfo
    gate_scale: float
    device: torch.device
    step: int | None = None
    tag: str = "model"
    path: Path | None = None
    run_dir: Path | None = None
    plan_id: str | None = None
    data_root: Path | None = None
    max_seq_len: int = DEFAULT_MAX_SEQ_LEN
    config: dict[str, Any] = field(default_factory=dict)

    def encode_prompt(self, text: str) -> list[int]:
        """``[bos] + encode(prompt)``: the prompt ids of a corpus row."""
        return [self.tokenizer.bos_id] + self.tokenizer.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.tokenizer.encode(text, add_special_tokens=False).ids

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.tokenizer.decode(list(ids), skip_special_tokens=True)

    def describe(self) -> dict[str, Any]:
        return {"path": str(self.path) if self.path else None, "tag": self.tag, "step": self.step,
                "run_dir": str(self.run_dir) if self.run_dir else None, "plan_id": self.plan_id,
                "gate_scale": self.gate_scale, "tokenizer_sha": self.tokenizer.sha256,
                "vocab_size": self.tokenizer.vocab_size, "max_seq_len": self.max_seq_len,
                "parameters": sum(p.numel() for p in self.model.parameters()), "device": str(self.device)}


def resolve_checkpoint(ref: str | Path, runs_dir: str | Path = "runs") -> tuple[Path, Path | None]:
    """``(weights file, run dir or None)`` for a run name, run dir, best-model dir or ``.pt`` file."""
    from trainer.checkpoint import Checkpoints, verify

    path = Path(ref)
    if not path.exists() and not path.is_absolute() and (Path(runs_dir) / path).exists():
        path = Path(runs_dir) / path
    if path.is_file():
        parent = path.parent
        run_dir = parent.parent if parent.name in ("checkpoints", "best-model") else None
        return path, run_dir
    if not path.is_dir():
        raise UserError(f"no run or checkpoint {ref} (nor {Path(runs_dir) / ref})")
    if (path / "model.pt").is_file():
        return path / "model.pt", path.parent if path.name == "best-model" else None
    if (path / "best-model" / "model.pt").is_file():
        return path / "best-model" / "model.pt", path
    for _, candidate in Checkpoints(path, warn=lambda m: None).candidates():
        if verify(candidate) is None:
            return candidate, path
    raise UserError(f"{path}: no best-model/model.pt and no verified checkpoint under {path / 'checkpoints'}")


def checkpoint_tag(path: Path) -> str:
    """A short name for a weights file: ``best-model``, ``final``, ``step_300``."""
    if path.parent.name == "best-model":
        return "best-model"
    return path.stem


def _config_of(state: dict, path: Path) -> dict[str, Any]:
    """The run configuration saved with the weights (training checkpoint) or beside them (best-model)."""
    config = state.get("config")
    if isinstance(config, str):
        try:
            return json.loads(config)
        except ValueError:
            return {}
    if isinstance(config, dict):
        return config
    beside = path.parent / "config.json"
    if beside.is_file():
        try:
            return json.loads(beside.read_text())
        except ValueError:
            return {}
    return {}


def model_from_state(state: dict, source: str = "checkpoint"):
    """An ``HRMMamba2LM`` with the state's weights (eval mode, CPU, its own dtype)."""
    from trainer.model import HRMMamba2LM, ModelConfig

    if "model" not in state or "model_config" not in state:
        raise UserError(f"{source}: not a model checkpoint (needs 'model' and 'model_config')")
    try:
        cfg = ModelConfig(**state["model_config"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{source}: model_config: {exc}") from None
    model = HRMMamba2LM(cfg)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as exc:
        raise UserError(f"{source}: weights do not fit the model: {str(exc).splitlines()[-1].strip()}") from None
    first = next(iter(state["model"].values()), None)
    if first is not None and first.is_floating_point():
        model.to(first.dtype)
    return model.eval()


def _tokenizer(model_path: Path, run_dir: Path | None, plan_id: str | None, data_root: Path | None,
               explicit: str | Path | None, vocab_size: int):
    from corpus.tokenizer import load_tokenizer
    from trainer.eval import catalog_data

    candidates: list[tuple[str, Path]] = []
    if explicit:
        candidates.append(("--tokenizer", Path(explicit)))
    candidates.append(("beside the weights", model_path.parent / "tokenizer.json"))
    if plan_id and data_root is not None:
        row = catalog_data.plan_row(data_root, plan_id)
        if row is not None:
            found = catalog_data.tokenizer_path(data_root, row["tokenizer_sha"])
            if found is not None:
                candidates.append((f"plan {plan_id}", found))
    if run_dir is not None:
        candidates.append(("the run's best-model", run_dir / "best-model" / "tokenizer.json"))
    for where, path in candidates:
        if where == "--tokenizer" or path.is_file():
            info = load_tokenizer(path)
            if info.vocab_size != vocab_size:
                raise UserError(f"tokenizer {path} ({where}) has {info.vocab_size} tokens, the model {vocab_size}")
            return info
    raise UserError(f"{model_path}: cannot find the run's tokenizer (no tokenizer.json beside it, plan "
                    f"{plan_id or '?'} not in the catalog under {data_root}); pass --tokenizer PATH")


def load_evaluable(ref: str | Path, runs_dir: str | Path = "runs", data_dir: str | Path | None = None,
                   tokenizer: str | Path | None = None, device: str = "cpu",
                   gate_scale: float | None = None) -> Evaluable:
    """Load a checkpoint for evaluation (see the module docstring for how each part is found)."""
    from corpus.paths import data_root as default_root
    from trainer.checkpoint import load
    from trainer.eval import catalog_data
    from trainer.schedule import gate_scale as schedule_gate

    path, run_dir = resolve_checkpoint(ref, runs_dir)
    try:
        state = load(path)
    except UserError:
        raise  # already one line naming the file (corrupt, unchecked, refused pickle)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user-facing error
        raise UserError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})") from None
    model = model_from_state(state, str(path))
    config = _config_of(state, path)
    plan_id = state.get("plan_id")
    root = Path(data_dir) if data_dir else default_root()
    # a padded vocabulary (an imported checkpoint) has more rows than tokens: output_vocab tokens
    info = _tokenizer(path, run_dir, plan_id, root, tokenizer, model.cfg.output_vocab or model.cfg.vocab_size)
    step = int(state["step"]) if state.get("step") is not None else None
    train = config.get("train", {}) if isinstance(config, dict) else {}
    if gate_scale is None:
        gate_scale = schedule_gate(max(0, (step or 0) - 1), int(train.get("hrm_gate_warmup_steps") or 0),
                                   int(train.get("gate_ramp_steps") or 0)) if step is not None else 1.0
    max_seq_len = train.get("max_seq_len")
    if not max_seq_len and plan_id:
        row = catalog_data.plan_row(root, plan_id)
        max_seq_len = row["max_seq_len"] if row else None
    dev = torch.device(device)
    return Evaluable(model=model.to(dev), tokenizer=info, gate_scale=float(gate_scale), device=dev, step=step,
                     tag=checkpoint_tag(path), path=path, run_dir=run_dir, plan_id=plan_id, data_root=root,
                     max_seq_len=int(max_seq_len or DEFAULT_MAX_SEQ_LEN), config=config)
