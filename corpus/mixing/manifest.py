"""Mix manifests (TOML, DESIGN §6): load, validate, and say exactly which key is wrong.

    [run]                 name
    [data]                tokenizer, max_seq_len, train_samples, val_samples, seed, window, weight_by,
                          overlong, max_target_loss
    [data.tokenizer_train]  optional: how to train the tokenizer when its file does not exist
    [[data.sources]]      name, version ("latest" | id), weight, tiers, tier_rule, max_epochs, overlong,
                          max_target_loss, build
    [model] [train] [eval]  tables owned by the trainer (checked there, only as tables here)

Every problem is one line ``<file>: <key>: <what is wrong>`` (a :class:`UserError`). This module
only checks the file itself; whether sources and versions exist is :mod:`corpus.mixing.resolve`'s
job, because it needs the catalog.
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from corpus.errors import UserError

WEIGHT_TOLERANCE = 1e-6
# what a row longer than data.max_seq_len becomes (corpus.mixing.overlong; default by version layout)
Overlong = Literal["skip", "cut_target", "truncate"]
MAX_TIER = 127  # tiers are int8 in the shards
WeightBy = Literal["samples", "tokens"]  # what a source's weight is a share of
DEFAULT_MAX_TARGET_LOSS = 0.01  # share of a source's target tokens overlong rows may lose without saying so


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


@dataclass(frozen=True)
class TierKnot:
    """Tier weights at one point of training progress (``at`` = fraction of the plan, 0..1)."""

    at: float
    weights: dict[int, float]


def parse_tiers(value: Any) -> list[TierKnot]:
    """Fixed tier weights or a schedule, as a list of knots (a fixed mix is one knot at 0).

    Accepted forms::

        tiers = [0.4, 0.3, 0.2, 0.1]                     # weight of tier 0, 1, 2, 3
        tiers = { 0 = 0.5, 3 = 0.5 }                     # sparse
        tiers = { schedule = [ { at = 0.0, weights = [1, 0, 0, 0] },
                               { at = 0.4, weights = [0.4, 0.3, 0.2, 0.1] } ] }
    """
    if isinstance(value, dict) and "schedule" in value:
        extra = sorted(set(value) - {"schedule"})
        if extra:
            raise ValueError(f"unknown key {extra[0]!r} beside 'schedule'")
        knots_in = value["schedule"]
        if not isinstance(knots_in, list) or not knots_in:
            raise ValueError("schedule must be a non-empty list of { at = ..., weights = ... }")
        knots = []
        for i, knot in enumerate(knots_in):
            if not isinstance(knot, dict) or set(knot) != {"at", "weights"}:
                raise ValueError(f"schedule[{i}] must have exactly the keys 'at' and 'weights'")
            at = knot["at"]
            if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0.0 <= at <= 1.0:
                raise ValueError(f"schedule[{i}].at must be a fraction of the plan in [0, 1], got {at!r}")
            knots.append(TierKnot(float(at), _tier_weights(knot["weights"], f"schedule[{i}].weights")))
        ats = [k.at for k in knots]
        if any(b <= a for a, b in zip(ats, ats[1:])):
            raise ValueError(f"schedule 'at' values must increase strictly, got {ats}")
        return knots
    return [TierKnot(0.0, _tier_weights(value, ""))]


def _tier_weights(value: Any, where: str) -> dict[int, float]:
    at = f"{where}: " if where else ""
    if isinstance(value, list):
        items = list(enumerate(value))
    elif isinstance(value, dict):
        items = []
        for key, w in value.items():
            try:
                tier = int(key)
            except (TypeError, ValueError):
                raise ValueError(f"{at}tier keys must be integers, got {key!r}") from None
            items.append((tier, w))
    else:
        raise ValueError(f"{at}give a list of weights per tier or a table {{ tier = weight }}")
    weights: dict[int, float] = {}
    for tier, w in items:
        if not 0 <= tier <= MAX_TIER:
            raise ValueError(f"{at}tier {tier} outside 0..{MAX_TIER}")
        if isinstance(w, bool) or not isinstance(w, (int, float)) or not math.isfinite(w) or w < 0:
            raise ValueError(f"{at}weight of tier {tier} must be a number >= 0, got {w!r}")
        weights[tier] = float(w)
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_TOLERANCE:
        raise ValueError(f"{at}tier weights sum to {total:.6g}, not 1 (tolerance {WEIGHT_TOLERANCE:g})")
    return {t: w for t, w in sorted(weights.items()) if w > 0}


class SourceSpec(_Strict):
    name: str = Field(min_length=1)
    version: str = "latest"
    weight: float = Field(gt=0, le=1)
    tiers: Optional[list[TierKnot]] = None
    tier_rule: Optional[str] = Field(default=None, min_length=1)  # re-tiered rule id; default: the build rule
    max_epochs: Optional[float] = Field(default=None, gt=0)
    overlong: Optional[Overlong] = None  # default: [data] overlong, else by layout (skip / truncate)
    # share of the version's target tokens its overlong rows may lose (skipped or cut); default: [data]'s
    max_target_loss: Optional[float] = Field(default=None, ge=0, le=1)
    build: Optional[dict[str, Any]] = None  # corpus.build options: the version this source resolves to

    @field_validator("tiers", mode="before")
    @classmethod
    def _tiers(cls, value: Any) -> Any:
        return None if value is None else parse_tiers(value)

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not value.strip():
            raise ValueError('give "latest" or a version id')
        return value.strip()

    @property
    def tier_schedule(self) -> bool:
        return bool(self.tiers) and len(self.tiers) > 1


class TokenizerTrain(_Strict):
    """How to train the tokenizer when ``data.tokenizer`` does not exist yet (a fresh machine)."""

    vocab_size: int = Field(ge=260)
    synthetic: int = Field(default=0, ge=0)  # examples from the embedded synthetic generators
    inputs: list[str] = Field(default_factory=list, alias="from")  # text files (txt/json/jsonl/parquet)
    seed: int = 0
    min_frequency: int = Field(default=2, ge=1)

    @model_validator(mode="after")
    def _something(self) -> "TokenizerTrain":
        if not self.synthetic and not self.inputs:
            raise ValueError("give synthetic = N and/or from = [paths] to train on")
        return self


MAX_SEQ_LEN = (1 << 31) - 1  # tokens per sample: an int32 in the plan's n_tokens column
MAX_SAMPLES = 1 << 40  # positions per split (int64 positions; memory is checked separately)
MAX_SEED = (1 << 63) - 1  # the catalog stores the seed as a BIGINT


class DataSection(_Strict):
    tokenizer: str = Field(min_length=1)
    tokenizer_train: Optional[TokenizerTrain] = None
    # Upper bounds: what the plan's int32/int64 columns and the catalog's BIGINT can hold (the
    # plan's memory against this machine is checked by corpus.mixing.plan before allocating).
    max_seq_len: int = Field(ge=2, le=MAX_SEQ_LEN)
    train_samples: int = Field(ge=1, le=MAX_SAMPLES)
    val_samples: int = Field(default=0, ge=0, le=MAX_SAMPLES)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    window: int = Field(default=1000, ge=1, le=MAX_SAMPLES)
    weight_by: WeightBy = "samples"  # weights are shares of positions (samples) or of delivered tokens
    overlong: Optional[Overlong] = None  # for every source without its own
    max_target_loss: float = Field(default=DEFAULT_MAX_TARGET_LOSS, ge=0, le=1)  # for every source without its own
    sources: list[SourceSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _sources(self) -> "DataSection":
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source {dup[0]!r} appears twice (one entry per source)")
        total = math.fsum(s.weight for s in self.sources)
        if abs(total - 1.0) > WEIGHT_TOLERANCE:
            raise ValueError(f"weights sum to {total:.9g}, not 1 (tolerance {WEIGHT_TOLERANCE:g})")
        return self


class RunSection(_Strict):
    name: str = Field(min_length=1)
    description: str = ""


class ManifestModel(_Strict):
    run: RunSection
    data: DataSection
    model: dict[str, Any] = Field(default_factory=dict)
    train: dict[str, Any] = Field(default_factory=dict)
    eval: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """A validated manifest and the file it came from (path, sha256 of its bytes, raw tables)."""

    path: Path
    sha256: str
    model: ManifestModel
    raw: dict[str, Any]

    @property
    def data(self) -> DataSection:
        return self.model.data

    @property
    def name(self) -> str:
        """The mix's directory name under data/mixes: the manifest file's stem (``stageB``)."""
        return self.path.stem

    def where(self, key: str) -> str:
        return f"{self.path}: {key}"


def read_toml(path: Path) -> tuple[bytes, dict[str, Any]]:
    """A manifest file's bytes (its sha256 identifies it) and parsed tables, or one UserError line.
    Shared with the trainer, which validates the ``[train]``/``[eval]``/``[model]`` tables."""
    if not path.is_file():
        raise UserError(f"manifest not found: {path}")
    raw_bytes = path.read_bytes()
    try:
        return raw_bytes, tomllib.loads(raw_bytes.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None


def load_manifest(path: str | Path) -> Manifest:
    """Read and validate a manifest file; any problem is one UserError line naming file and key."""
    path = Path(path)
    raw_bytes, raw = read_toml(path)
    return manifest_from_tables(path, raw, hashlib.sha256(raw_bytes).hexdigest())


def manifest_from_tables(path: Path, raw: dict[str, Any], sha256: str) -> Manifest:
    """Validate parsed tables (a file's, or a file's with command-line overrides applied)."""
    try:
        model = ManifestModel.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_error(exc, raw)}") from None
    return Manifest(path, sha256, model, raw)


def manifest_from_dict(raw: dict[str, Any], name: str = "notebook") -> Manifest:
    """A manifest given as tables (a notebook's dict), validated like a file; ``name`` plays the
    file's stem (the mix's directory under data/mixes) and the sha256 is over its canonical JSON."""
    import json

    path = Path(f"{name}.toml")
    try:
        model = ManifestModel.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"{path}: {describe_error(exc, raw)}") from None
    canonical = json.dumps(raw, sort_keys=True, default=str).encode()
    return Manifest(path, hashlib.sha256(canonical).hexdigest(), model, raw)


def describe_error(exc: ValidationError, raw: dict[str, Any]) -> str:
    """The first pydantic error as ``key.path[i]: message`` (the source's name added for context)."""
    err = exc.errors()[0]
    loc = list(err["loc"])
    key = _dotted(loc, raw)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{key}: unknown key"
    if err["type"] == "missing":
        return f"{key}: missing" + _near_miss(loc, raw)
    if loc and loc[-1] == "sources" or (err["type"] == "value_error" and loc == ["data"]):
        key = key if key.endswith("sources") else f"{key}.sources"
    shown = err.get("input")
    given = f" (got {shown!r})" if err["type"] not in ("value_error",) and not isinstance(shown, dict) else ""
    return f"{key}: {msg}{given}"


def _near_miss(loc: list, raw: dict[str, Any]) -> str:
    """`` (found 'nmae': a typo?)`` when the table holds a key close to the missing one."""
    import difflib

    node: Any = raw
    for part in loc[:-1]:
        node = node[part] if isinstance(node, (dict, list)) and (part in node if isinstance(node, dict)
                                                                 else part < len(node)) else None
    if not isinstance(node, dict) or not loc:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), [k for k in node if isinstance(k, str)], n=1, cutoff=0.6)
    return f" (found {close[0]!r}: a typo?)" if close else ""


def _dotted(loc: list, raw: dict[str, Any]) -> str:
    out = ""
    node: Any = raw
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            if isinstance(node, dict) and isinstance(node.get("name"), str):
                out += f" ({node['name']})"
        else:
            out += ("." if out else "") + str(part)
            node = node.get(part) if isinstance(node, dict) else None
    return out or "(top level)"
