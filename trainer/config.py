"""Run configuration: the manifest's ``[model]``, ``[train]`` and ``[eval]`` sections plus overrides.

Every flag of the blueprint's recipes is a key of exactly one section, and the same name works
as a command-line override, so a recipe translates one to one::

    python -m hrm_lm.training.train --dataset D --batch_size 22 --save_best_model ...
    python -m trainer.run manifests/stageA.toml --batch_size 22 --save_best_model ...

``--dataset`` names the manifest (the data now comes from its ``[data]`` mix). Boolean flags
take an optional value (``--save_best_model`` or ``--deep_supervision 1``). Anything unknown or
ill-typed is one line naming the file and key, or the flag.
"""

from __future__ import annotations

import difflib
import re
import typing
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, field_validator, model_validator

from corpus.errors import UserError
from corpus.mixing.overrides import DATA_KEYS, DataOverrides, apply_data_overrides, overridden_sha

PositiveInt = typing.Annotated[int, Field(ge=1)]
NonNegInt = typing.Annotated[int, Field(ge=0)]
NonNegFloat = typing.Annotated[float, Field(ge=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class TrainSection(_Section):
    """``[train]``: the optimisation loop (the blueprint's flags keep their names)."""

    run_name: Optional[str] = None  # default: [run].name
    runs_dir: str = "runs"
    batch_size: PositiveInt = 8  # global: split evenly over torchrun ranks
    steps: Optional[PositiveInt] = None
    epochs: Optional[typing.Annotated[float, Field(gt=0)]] = None  # passes over the plan's train positions
    learning_rate: typing.Annotated[float, Field(gt=0)] = 3e-4
    warmup_steps: NonNegInt = 0
    lr_scheduler: Literal["cosine", "linear", "constant"] = "cosine"
    lr_min_ratio: typing.Annotated[float, Field(ge=0, le=1)] = 0.1
    weight_decay: NonNegFloat = 0.1
    beta1: typing.Annotated[float, Field(ge=0, lt=1)] = 0.9
    beta2: typing.Annotated[float, Field(ge=0, lt=1)] = 0.95
    grad_clip: NonNegFloat = 1.0  # 0 disables clipping
    checkpoint_every: NonNegInt = 0  # 0: at every validation
    checkpoint_limit: PositiveInt = 5
    mixed_precision: Literal["none", "bf16", "fp16"] = "none"
    log_steps: PositiveInt = 10
    dataset_workers: NonNegInt = 0  # 0: read in the training process
    bucket_batches: PositiveInt = 8  # length bucketing window, in batches (1: plan order)
    optimizer: Literal["adamw", "adamw_8bit"] = "adamw"
    max_seq_len: Optional[PositiveInt] = None  # default: the plan's; longer rows are truncated
    loss_on_prompt: bool = True  # False: only target tokens are predicted (QA-style rows)
    hrm_gate_warmup_steps: NonNegInt = 0
    gate_ramp_steps: NonNegInt = 0
    reset_progress: bool = False
    start_over: bool = False  # every checkpoint damaged: archive the run's files and train from step 0
    dry_run: bool = False
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    init_from: Optional[str] = None  # run name, run dir, best-model dir or checkpoint file
    tensorboard: bool = True  # event files in RUN/tensorboard (trainer/tracking.py)
    wandb: Literal["off", "offline", "online"] = "off"  # Weights & Biases, when installed
    wandb_project: str = "hrm-corpus"

    @field_validator("init_from", "run_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: Any) -> Any:
        """``--init_from ""`` (or ``none``) switches off a manifest's init_from."""
        return None if isinstance(value, str) and value.strip().lower() in ("", "none") else value

    @model_validator(mode="after")
    def _steps_or_epochs(self) -> "TrainSection":
        if self.steps is not None and self.epochs is not None:
            raise ValueError("give steps or epochs, not both")
        return self


class EvalSection(_Section):
    """``[eval]``: validation during training, early stopping and the best model."""

    val_every: PositiveInt = 200
    eval_batch_size: Optional[PositiveInt] = None  # default: batch_size
    max_val_samples: Optional[PositiveInt] = None  # default: the plan's whole val split
    eval_loss_patience: NonNegInt = 0  # 0: never stop early
    patience_grace_steps: NonNegInt = 0
    save_best_model: bool = True
    dev_suites: list[str] = []  # trainer.eval suites run at every validation (docs/evaluation.md)
    dev_limit: PositiveInt = 32  # items per dataset of each dev suite

    @field_validator("dev_suites", mode="before")
    @classmethod
    def _suite_names(cls, value):
        from trainer.eval.suites import parse_suites

        return parse_suites(value) if value not in ([], "", None) else []


MODEL_PRESETS = ("default", "demo", "size_50m")


@lru_cache(maxsize=1)
def model_section() -> type[BaseModel]:
    """``[model]``: a preset plus any ModelConfig field except vocab_size (the tokenizer's)."""
    from trainer.model.config import ModelConfig

    hints = typing.get_type_hints(ModelConfig)
    spec: dict[str, Any] = {"preset": (Literal[MODEL_PRESETS], "default")}  # type: ignore[valid-type]
    for f in fields(ModelConfig):
        if f.name != "vocab_size":
            spec[f.name] = (Optional[hints[f.name]], None)
    return create_model("ModelSection", __base__=_Section, **spec)


def build_model_config(model: dict[str, Any], vocab_size: int):
    """A ModelConfig from a validated ``[model]`` dict (None = the preset's value)."""
    from trainer.model.config import ModelConfig

    values = {k: v for k, v in model.items() if k != "preset" and v is not None}
    preset = model.get("preset") or "default"
    try:
        if preset == "default":
            return ModelConfig(vocab_size=vocab_size, **values)
        return getattr(ModelConfig, preset)(vocab_size, **values)
    except (TypeError, ValueError) as exc:
        raise UserError(f"[model]: {exc}") from None


# -- flags ------------------------------------------------------------------------------------

EXTRA_FLAGS = {
    "dataset": "the manifest (alias of the positional MANIFEST)",
    "data_dir": "data root (default: $HRM_DATA_DIR or ./data)",
    "scale": "smoke: the manifest's recipe scaled down to minutes on a CPU (trainer/scale.py)",
    "from": "SOURCE=PATH[,PATH]: local input for a manifest source's build (repeatable)",
}
DATA_FLAG = "data."  # --data.train_samples N, --data.val_samples, --data.seed, --data.max_seq_len


@lru_cache(maxsize=1)
def flag_sections() -> dict[str, str]:
    """Each override name -> the one section that owns it."""
    owner: dict[str, str] = {}
    for section, cls in (("train", TrainSection), ("eval", EvalSection), ("model", model_section())):
        for name in cls.model_fields:
            assert name not in owner, f"flag {name} in two sections"
            owner[name] = section
    return owner


def _section_class(section: str) -> type[BaseModel]:
    return {"train": TrainSection, "eval": EvalSection, "model": model_section()}[section]


def _is_bool(section: str, name: str) -> bool:
    annotation = _section_class(section).model_fields[name].annotation
    return annotation is bool or typing.get_args(annotation) == (bool, type(None))



@dataclass
class CommandLine:
    manifest: Path
    overrides: dict[str, str | bool] = field(default_factory=dict)
    data_dir: str | None = None
    data: DataOverrides = field(default_factory=DataOverrides)  # [data] keys and --from inputs
    scale: str | None = None


def parse_command_line(argv: list[str], prog: str = "python -m trainer.run") -> CommandLine:
    """``MANIFEST [--flag value ...]``; ``-h`` prints every flag and exits."""
    owner = flag_sections()
    positional: list[str] = []
    overrides: dict[str, str | bool] = {}
    extra: dict[str, str] = {}
    data = DataOverrides()
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if token in ("-h", "--help"):
            print(help_text(prog))
            raise SystemExit(0)
        if not token.startswith("--"):
            positional.append(token)
            continue
        name, eq, value = token[2:].partition("=")
        name = name.replace("-", "_")
        is_data = name.startswith(DATA_FLAG)
        if name not in owner and name not in EXTRA_FLAGS and not is_data:
            close = difflib.get_close_matches(name, list(owner) + list(EXTRA_FLAGS), n=1)
            hint = f" (did you mean --{close[0]}?)" if close else " (see --help)"
            raise UserError(f"unknown flag --{name}{hint}")
        if not eq:
            takes_optional = name in owner and _is_bool(owner[name], name)
            if takes_optional:
                # a bare boolean flag means true; the next word is its value unless it is a
                # flag or the manifest (``--save_best_model manifests/x.toml`` stays valid)
                if i < len(argv) and not argv[i].startswith("--") and not argv[i].endswith(".toml"):
                    value, i = argv[i], i + 1
                else:
                    value = "true"
            elif i < len(argv):
                value, i = argv[i], i + 1
            else:
                raise UserError(f"flag --{name} needs a value")
        if is_data:
            data.set_value(name[len(DATA_FLAG):], value)
        elif name == "from":
            data.add_input(str(value))
        elif name in EXTRA_FLAGS:
            extra[name] = value
        else:
            overrides[name] = value
    if "dataset" in extra:
        positional.append(extra["dataset"])
    if len(positional) != 1:
        raise UserError(f"give exactly one manifest (got {len(positional)}): {prog} MANIFEST [--flag value ...]")
    return CommandLine(Path(positional[0]), overrides, extra.get("data_dir"), data, extra.get("scale"))


def help_text(prog: str) -> str:
    """Every flag, grouped by the manifest section that owns it, with its meaning and default."""
    from trainer.flags_help import MEANING

    lines = [f"usage: {prog} MANIFEST [--flag value ...]", "",
             "Trains the manifest's model on its mix plan (built first when missing); auto-resumes.",
             "Every flag is also a key of the manifest section shown; the flag wins.",
             "[model] defaults of None take the preset's value.", ""]
    for section in ("train", "eval", "model"):
        cls = _section_class(section)
        lines.append(f"[{section}]")
        for name, info in cls.model_fields.items():
            default = "" if info.default is None else f" (default {info.default!r})"
            lines.append(f"  --{name:<24} {MEANING.get(name, '')}{default}")
        lines.append("")
    lines.append("[data] (a new value gives a new plan)")
    for name in DATA_KEYS:
        lines.append(f"  --data.{name:<19} the manifest's [data].{name}, overridden")
    lines.append("")
    lines.append("other flags")
    for name, text in EXTRA_FLAGS.items():
        lines.append(f"  --{name:<24} {text}")
    return "\n".join(lines)


# -- the whole run configuration --------------------------------------------------------------

@dataclass
class RunConfig:
    """Validated sections plus where they came from (for checkpoints and resume checks)."""

    manifest_path: Path
    manifest_sha: str
    manifest: dict[str, Any]  # the whole parsed TOML (the mixer reads [data])
    train: TrainSection
    eval: EvalSection
    model: dict[str, Any]  # validated [model]: preset + explicit fields
    data_dir: str | None = None
    data: DataOverrides = field(default_factory=DataOverrides)  # applied to [data] when planning
    notes: list[str] = field(default_factory=list)  # what the scale or the flags changed, said at start

    @property
    def run_name(self) -> str:
        return self.train.run_name or str(self.manifest.get("run", {}).get("name") or self.manifest_path.stem)

    @property
    def run_dir(self) -> Path:
        return Path(self.train.runs_dir) / self.run_name

    def as_dict(self) -> dict[str, Any]:
        return {"manifest": str(self.manifest_path), "manifest_sha": self.manifest_sha,
                "run_name": self.run_name, "train": self.train.model_dump(),
                "eval": self.eval.model_dump(), "model": self.model,
                **({"data_overrides": self.data.as_dict()} if self.data else {})}


def load_config(cmd: CommandLine) -> RunConfig:
    """Read the manifest, apply overrides, validate; every problem is one line."""
    from corpus.mixing.manifest import read_toml

    path = cmd.manifest
    raw, manifest = read_toml(path)
    owner = flag_sections()
    notes: list[str] = []
    if cmd.scale:
        from trainer.scale import get_scale, scale_tables

        notes += scale_tables(manifest, get_scale(cmd.scale), cmd.overrides, cmd.data)
    elif "steps" in cmd.overrides and "train_samples" not in cmd.data.values:
        notes += _steps_note(manifest, cmd.overrides)
    sections: dict[str, Any] = {}
    for section in ("train", "eval", "model"):
        values = manifest.get(section, {})
        if not isinstance(values, dict):
            raise UserError(f"{path}: [{section}] must be a table")
        if section == "model" and "vocab_size" in values:
            raise UserError(f"{path}: [model].vocab_size: not allowed, it comes from the plan's tokenizer")
        merged = dict(values)
        merged.update({k: v for k, v in cmd.overrides.items() if owner[k] == section})
        try:
            sections[section] = _section_class(section).model_validate(merged)
        except ValidationError as exc:
            raise UserError(_one_line(exc, path, section, cmd.overrides)) from None
    manifest = apply_data_overrides(manifest, cmd.data, str(path))
    cfg = RunConfig(path, overridden_sha(raw, cmd.data), manifest, sections["train"], sections["eval"],
                    sections["model"].model_dump(), cmd.data_dir, cmd.data, notes)
    check_run_name(cfg.run_name, "--run_name" if sections["train"].run_name else f"{path}: [run].name")
    return cfg


RUN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_run_name(name: str, where: str) -> None:
    """A run name is one safe path component: ``runs/<name>`` never lands outside ``runs_dir``."""
    if not RUN_NAME.match(name) or name in (".", ".."):
        raise UserError(f"{where} = {name!r}: a run name is one path component of letters, digits, '.', '_' "
                        f"and '-' (at most 128, starting with a letter or digit), so the run stays under runs_dir")


def _steps_note(manifest: dict, overrides: dict) -> list[str]:
    """``--steps`` keeps the plan (so raising it later resumes the same run), but says when the
    plan is far larger than what the run reads."""
    train, data = manifest.get("train", {}), manifest.get("data", {})
    try:
        reads = int(overrides["steps"]) * int(overrides.get("batch_size") or train.get("batch_size") or 8)
        planned = int(data.get("train_samples", 0))
    except (TypeError, ValueError):
        return []
    if planned <= 2 * reads:
        return []
    return [f"--steps {overrides['steps']}: the run reads {reads:,} of the plan's {planned:,} train positions "
            f"(--data.train_samples {reads} plans only those, --scale smoke scales the whole recipe)"]


def _one_line(exc: ValidationError, path: Path, section: str, overrides: dict) -> str:
    # an unknown key first: a typo in a required key shows up as "missing" AND as unknown, and
    # the unknown one names both spellings
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    err = errors[0]
    key = str(err["loc"][0]) if err["loc"] else ""
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(key, list(_section_class(section).model_fields), n=1)
        return f"{path}: [{section}].{key}: unknown key" + (f" (did you mean {close[0]}?)" if close else "")
    where = f"--{key}" if key in overrides else f"{path}: [{section}]" + (f".{key}" if key else "")
    given = f" (got {err['input']!r})" if key else ""
    return f"{where}: {msg}{given}"
