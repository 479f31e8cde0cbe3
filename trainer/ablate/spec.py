"""The ablation spec (TOML): a base manifest, arms that override it, seeds and evaluation.

    [ablation]
    name = "hrm"
    manifest = "../manifests/ablation_arith.toml"   # relative to the spec file
    runs_dir = "runs/ablation-hrm"                   # one normal run directory per (arm, seed)
    seeds = [0, 1, 2]
    base = "hrm"                                     # the arm every other is compared with (default: the first)

    [common]                                         # overrides applied to every arm (e.g. a scaled-down copy)
    train = { steps = 300 }

    [evaluation]
    suites = ["arith"]                               # trainer.eval suites, on the same items for every run
    limit = 150                                      # items per dataset (arith: per task, spread over tiers)
    max_new_tokens = 160

    [[arms]]
    name = "hrm"
    [[arms]]
    name = "no-hrm"
    model = { hrm_enabled = false }
    [[arms]]
    name = "uniform-tiers"
    data = { sources = { "synthetic:arith" = { tiers = [1.0, 1.0, 1.0] } } }

An arm's ``model``, ``train``, ``eval`` and ``data`` tables are merged into the base manifest's
sections (nested tables merge key by key; under ``data.sources`` a table keyed by source name
merges into that source). Arms train on equal budgets: ``steps``, ``epochs``, ``batch_size`` and
``max_seq_len`` may only be set in ``[common]``, never per arm.
"""

from __future__ import annotations

import copy
import hashlib
import re
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from corpus.errors import UserError

SECTIONS = ("model", "train", "eval", "data")
BUDGET_KEYS = ("steps", "epochs", "batch_size", "max_seq_len")  # equal for every arm
PER_RUN_KEYS = ("seed", "run_name", "runs_dir", "init_from", "reset_progress", "dry_run")  # the command sets them
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Overrides(_Strict):
    model: dict[str, Any] = {}
    train: dict[str, Any] = {}
    eval: dict[str, Any] = {}
    data: dict[str, Any] = {}


class Arm(Overrides):
    name: str
    description: str = ""

    @field_validator("name")
    @classmethod
    def _plain(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"arm name {value!r}: letters, digits, '_', '.', '-' only (it names run directories)")
        return value


class Header(_Strict):
    name: str
    manifest: str
    runs_dir: str = "runs/ablation"
    out: Optional[str] = None  # default: <runs_dir>/report
    seeds: list[int] = Field(min_length=1)
    base: Optional[str] = None
    description: str = ""


class Evaluation(_Strict):
    suites: list[str] = ["arith"]
    limit: Optional[int] = Field(default=None, ge=1)
    max_new_tokens: Optional[int] = Field(default=None, ge=1)
    batch_size: int = Field(default=64, ge=1)
    arith_tasks: Optional[list[str]] = None
    arith_seed: Optional[int] = None
    teacher_forced: bool = True  # with arith: target NLL and token accuracy per item (teacher.py)
    device: str = "cpu"  # where final.pt is evaluated (cpu, cuda, cuda:N); the runs train on [train] device
    # HRM arms: score the same weights again with the gate shut (the plain decoder inside them), so
    # the report can say how much of each arm's exact match the HRM's memory carries
    memory_left_out: bool = True

    @field_validator("suites")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        from trainer.eval.suites import parse_suites

        return parse_suites(value)


class SpecFile(_Strict):
    ablation: Header
    common: Overrides = Overrides()
    evaluation: Evaluation = Evaluation()
    arms: list[Arm] = Field(min_length=2)


class Spec:
    """A validated spec, with paths resolved (the manifest against the spec's folder)."""

    def __init__(self, path: Path, parsed: SpecFile, raw: bytes):
        self.path = Path(path)
        self.parsed = parsed
        self.sha = hashlib.sha256(raw).hexdigest()
        h = parsed.ablation
        self.name = h.name
        self.manifest = (self.path.parent / h.manifest) if not Path(h.manifest).is_absolute() else Path(h.manifest)
        self.runs_dir = Path(h.runs_dir)
        self.out_dir = Path(h.out) if h.out else self.runs_dir / "report"
        self.seeds = list(h.seeds)
        self.arms = list(parsed.arms)
        self.base = h.base or self.arms[0].name
        self.evaluation = parsed.evaluation
        self.common = parsed.common

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def run_name(self, arm: str, seed: int) -> str:
        return f"{arm}-s{seed}"


def load_spec(path: str | Path) -> Spec:
    """Read and check a spec; every problem is one line naming the file and the field."""
    from corpus.mixing.manifest import describe_error, read_toml

    path = Path(path)
    if not path.is_file():
        raise UserError(f"ablation spec not found: {path}")
    raw, doc = read_toml(path)
    try:
        parsed = SpecFile.model_validate(doc)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_error(exc, doc)}") from None
    spec = Spec(path, parsed, raw)
    names = [a.name for a in spec.arms]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"{path}: arms: the name {dupes[0]!r} is used twice")
    if spec.base not in names:
        raise UserError(f"{path}: ablation.base: no arm named {spec.base!r} (arms: {', '.join(names)})")
    if len(set(spec.seeds)) != len(spec.seeds):
        raise UserError(f"{path}: ablation.seeds: a seed is listed twice")
    for arm in spec.arms:
        for section in ("train", "data"):
            fixed = sorted(k for k in getattr(arm, section) if k in BUDGET_KEYS)
            if fixed:
                raise UserError(f"{path}: arms[{arm.name}].{section}.{fixed[0]}: the training budget is the same for "
                                f"every arm; set it in [common]")
    for where, over in [("common", spec.common)] + [(f"arms[{a.name}]", a) for a in spec.arms]:
        fixed = sorted(k for k in over.train if k in PER_RUN_KEYS)
        if fixed:
            raise UserError(f"{path}: {where}.train.{fixed[0]}: set by the ablation for each run (seeds, run names)")
    if not spec.manifest.is_file():
        raise UserError(f"{path}: ablation.manifest: no file {spec.manifest}")
    return spec


# -- arm manifests ------------------------------------------------------------------------------

def merge(base: dict[str, Any], over: dict[str, Any], where: str) -> dict[str, Any]:
    """``over`` merged into a copy of ``base``: tables key by key, anything else replaced.
    ``sources`` given as a table keyed by source name merges into those sources of the list."""
    out = copy.deepcopy(base)
    for key, value in over.items():
        here = f"{where}.{key}"
        if key == "sources" and isinstance(value, dict) and isinstance(out.get(key), list):
            by_name = {s.get("name"): i for i, s in enumerate(out[key])}
            for name, patch in value.items():
                if name not in by_name:
                    raise UserError(f"{here}: the base manifest has no source {name!r} "
                                    f"(it has {', '.join(str(n) for n in by_name)})")
                if not isinstance(patch, dict):
                    raise UserError(f"{here}.{name}: must be a table of the source's keys")
                i = by_name[name]
                out[key][i] = merge(out[key][i], patch, f"{here}.{name}")
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value, here)
        else:
            out[key] = copy.deepcopy(value)
    return out


def arm_manifest(spec: Spec, arm: Arm, base_doc: dict[str, Any]) -> dict[str, Any]:
    """The base manifest with the common overrides, then the arm's."""
    doc = copy.deepcopy(base_doc)
    for over, where in ((spec.common, f"{spec.path}: common"), (arm, f"{spec.path}: arms[{arm.name}]")):
        for section in SECTIONS:
            patch = getattr(over, section)
            if patch:
                doc[section] = merge(doc.get(section, {}), patch, f"{where}.{section}")
    doc.setdefault("run", {})["description"] = f"ablation {spec.name}, arm {arm.name}" + (
        f": {arm.description}" if arm.description else "")
    return doc
