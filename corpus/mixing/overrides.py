"""Command-line changes to a manifest's ``[data]``: keys, local inputs for sources, relaxed caps.

    manifests/stageB.toml  +  --data.train_samples 2000  --from gsm8k=../shared/data/gsm8k/train_sample.jsonl
         │  apply_data_overrides(raw tables)        (the file is never rewritten)
         ▼
    Manifest(path, sha256 = sha of the file's bytes + the overrides, validated tables)
         └─► resolve / plan as usual: the plan id follows, because it hashes [data]'s values

``--from NAME=PATH[,PATH...]`` sets ``build.from`` of the source ``NAME`` (adding a ``build``
table when the manifest has none), for when the hub is not reachable or the input is local.
The sha of an overridden manifest differs from the file's, so a run resumed with other
overrides is told that its manifest changed.
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.errors import UserError

DATA_KEYS = ("train_samples", "val_samples", "seed", "max_seq_len", "window")


@dataclass
class DataOverrides:
    """What the command line changes in ``[data]``; empty means the file as it is."""

    values: dict[str, int] = field(default_factory=dict)  # [data] key -> value
    inputs: dict[str, list[str]] = field(default_factory=dict)  # source name -> local input paths
    builds: dict[str, dict[str, Any]] = field(default_factory=dict)  # source name -> build keys to set
    lift_max_epochs: bool = False  # a scaled run over small local inputs repeats rows more often

    def __bool__(self) -> bool:
        return bool(self.values or self.inputs or self.builds or self.lift_max_epochs)

    def as_dict(self) -> dict[str, Any]:
        return {"data": dict(sorted(self.values.items())), "from": dict(sorted(self.inputs.items())),
                "build": {k: dict(sorted(v.items())) for k, v in sorted(self.builds.items())},
                "lift_max_epochs": self.lift_max_epochs}

    def set_value(self, key: str, text: str | int, flag: str | None = None) -> None:
        """``--data.KEY VALUE`` (an integer key of [data])."""
        flag = flag or f"--data.{key}"
        if key not in DATA_KEYS:
            raise UserError(f"{flag}: not a [data] key that can be overridden (use one of "
                            f"{', '.join('data.' + k for k in DATA_KEYS)})")
        try:
            self.values[key] = int(text)
        except (TypeError, ValueError):
            raise UserError(f"{flag}: needs an integer (got {text!r})") from None

    def add_input(self, spec: str) -> None:
        """``--from NAME=PATH[,PATH...]``: local inputs for one source of the manifest."""
        name, eq, paths = spec.partition("=")
        items = [p.strip() for p in paths.split(",") if p.strip()]
        if not eq or not name.strip() or not items:
            raise UserError(f"--from {spec}: give SOURCE=PATH[,PATH...] (e.g. --from gsm8k=train.jsonl)")
        self.inputs[name.strip()] = items


def apply_data_overrides(raw: dict[str, Any], overrides: DataOverrides, where: str) -> dict[str, Any]:
    """A copy of the manifest tables with ``overrides`` applied; a source named by ``--from`` or
    a build change that the manifest does not have is one line naming it."""
    out = copy.deepcopy(raw)
    data = out.setdefault("data", {})
    if not isinstance(data, dict):
        raise UserError(f"{where}: [data] must be a table")
    data.update(overrides.values)
    sources = data.get("sources") or []
    by_name = {s.get("name"): s for s in sources if isinstance(s, dict)}
    for name in list(overrides.inputs) + list(overrides.builds):
        if name not in by_name:
            raise UserError(f"{where}: no source {name!r} in the manifest (sources: "
                            f"{', '.join(str(n) for n in by_name)})")
    for name, paths in overrides.inputs.items():
        build = by_name[name].setdefault("build", {})
        build["from"] = [str(Path(p).expanduser().resolve()) for p in paths]
    for name, keys in overrides.builds.items():
        if "build" in by_name[name]:
            by_name[name]["build"].update(keys)
    if overrides.lift_max_epochs:
        for s in by_name.values():
            s.pop("max_epochs", None)
    return out


def overridden_sha(raw_bytes: bytes, overrides: DataOverrides) -> str:
    """The manifest file's sha256, or, with overrides, the sha of its bytes and the overrides."""
    h = hashlib.sha256(raw_bytes)
    if overrides:
        h.update(b"\0overrides\0" + json.dumps(overrides.as_dict(), sort_keys=True).encode())
    return h.hexdigest()


def load_overridden(path: str | Path, overrides: DataOverrides):
    """:func:`corpus.mixing.manifest.load_manifest` with ``overrides`` applied before validation."""
    from corpus.mixing.manifest import manifest_from_tables, read_toml

    path = Path(path)
    raw_bytes, raw = read_toml(path)
    return manifest_from_tables(path, apply_data_overrides(raw, overrides, str(path)),
                                overridden_sha(raw_bytes, overrides))
