"""``--scale smoke``: a stage manifest run end to end in minutes on a laptop CPU, its shape intact.

What stays: the sources and weights, tier schedules, auxiliary losses, optimizer, precision
(except bf16 on a CPU without native bf16, which runs as fp32: emulated bf16 is ~10x slower),
lr scheduler, patience, the ``init_from`` chain. What shrinks, together, by one factor
``f = steps / manifest steps``::

    steps                      S (40, or --steps)
    warmup_steps, hrm_gate_warmup_steps, gate_ramp_steps, patience_grace_steps
                               max(1, round(k·f)) for k > 0 (0 stays 0: no warmup stays none)
    val_every                  max(round(k·f), S // 4): a handful of validations, not one per step
    train_samples              S × batch_size (one pass, as the stage manifests plan it)
    val_samples, max_val_samples, eval_batch_size, batch_size, dataset_workers, build count/limit
                               small fixed values (below), never more than the manifest's
    the model                  the demo preset, narrower; the run's context 128 tokens (the corpus
                               and the plan keep [data].max_seq_len, longer rows are cut)
    run_name, init_from        "<name>-smoke", so a scaled chain never touches the real runs
    max_epochs                 not enforced (small local inputs repeat more than the real corpus)

Every explicit flag still wins over what the scale sets. The changes are printed as one table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from corpus.errors import UserError
from trainer.hardware import cpu_has_native_bf16, runs_on_cpu

SCALES = ("smoke",)


@dataclass(frozen=True)
class Scale:
    name: str
    steps: int
    batch_size: int
    val_samples: int
    max_seq_len: int  # the run's context ([train].max_seq_len)
    dataset_workers: int
    build_cap: int  # a source build's count / limit
    evaluations: int  # about this many validations per run
    model: dict[str, Any] = field(default_factory=dict)


SMOKE = Scale("smoke", steps=40, batch_size=8, val_samples=64, max_seq_len=128, dataset_workers=1,
              build_cap=500, evaluations=4,
              model={"preset": "demo", "d_model": 64, "n_layers": 2, "d_hrm": 32})

# step counts scaled by f; 0 stays 0 (and none stays none)
SCALED_STEPS = (("train", "warmup_steps"), ("train", "hrm_gate_warmup_steps"), ("train", "gate_ramp_steps"),
                ("eval", "patience_grace_steps"))
SUFFIX_KEYS = ("run_name", "init_from")


def get_scale(name: str) -> Scale:
    if name != "smoke":
        raise UserError(f"--scale {name}: unknown scale (known: {', '.join(SCALES)})")
    return SMOKE


def scale_tables(tables: dict[str, Any], scale: Scale, flags: dict[str, Any], data) -> list[str]:
    """Scale the manifest's ``train``/``eval``/``model`` tables in place and the ``[data]`` counts
    through ``data`` (a :class:`corpus.mixing.overrides.DataOverrides`); keys given as ``flags``
    are left to the flags. Returns the lines that say what changed."""
    train, ev = tables.setdefault("train", {}), tables.setdefault("eval", {})
    model = tables.setdefault("model", {})
    d = tables.get("data", {}) or {}
    changes: list[tuple[str, Any, Any]] = []

    def put(section: dict, sec_name: str, key: str, value: Any) -> None:
        if key in flags:
            return
        old = section.get(key)
        if old != value:
            section[key] = value
            changes.append((f"{sec_name}.{key}", old, value))

    batch = int(flags.get("batch_size") or min(int(train.get("batch_size", scale.batch_size)), scale.batch_size))
    put(train, "train", "batch_size", batch)
    old_steps = _manifest_steps(train, d, batch)
    steps = int(flags.get("steps") or scale.steps)
    put(train, "train", "steps", steps)
    if "epochs" in train and "epochs" not in flags:
        changes.append(("train.epochs", train.pop("epochs"), None))
    f = steps / max(1, old_steps)
    for sec_name, key in SCALED_STEPS:
        section = train if sec_name == "train" else ev
        k = section.get(key)
        if k:
            put(section, sec_name, key, max(1, round(int(k) * f)))
    put(ev, "eval", "val_every", max(round(int(ev.get("val_every", steps)) * f), steps // scale.evaluations, 1))
    put(ev, "eval", "eval_batch_size", min(int(ev.get("eval_batch_size") or batch), batch))
    val = min(int(d.get("val_samples", 0)), scale.val_samples)
    put(ev, "eval", "max_val_samples", max(1, val))
    put(train, "train", "max_seq_len", min(int(train.get("max_seq_len") or d.get("max_seq_len", scale.max_seq_len)),
                                           scale.max_seq_len))
    put(train, "train", "dataset_workers", min(int(train.get("dataset_workers", 0)), scale.dataset_workers))
    if train.get("mixed_precision") == "bf16" and runs_on_cpu(str(flags.get("device") or train.get("device", "auto"))) \
            and not cpu_has_native_bf16():
        put(train, "train", "mixed_precision", "none")  # emulated bf16 would be most of a smoke run's time
    for key in SUFFIX_KEYS:
        name = train.get(key) if key != "run_name" else (train.get("run_name") or tables.get("run", {}).get("name"))
        if name and "/" not in str(name) and not str(name).endswith(f"-{scale.name}"):
            put(train, "train", key, f"{name}-{scale.name}")
    for key, value in scale.model.items():
        if key not in flags:
            changes.append((f"model.{key}", model.get(key), value))
            model[key] = value

    _scale_data(d, data, scale, steps * batch, val, changes)
    width = max(len(k) for k, _, _ in changes)
    lines = [f"--scale {scale.name}: a stage of {old_steps:,} steps run as {steps} (f = {f:.3g}); flags still win"]
    lines += [f"  {key:<{width}}  {_show(old)} -> {_show(new)}" for key, old, new in changes]
    return lines


def _scale_data(d: dict, data, scale: Scale, train_samples: int, val_samples: int, changes: list) -> None:
    """[data] counts and the sources' build sizes, through the data overrides."""
    for key, value in (("train_samples", train_samples), ("val_samples", val_samples)):
        if key not in data.values and d.get(key) != value:
            data.values[key] = value
            changes.append((f"data.{key}", d.get(key), value))
    for source in d.get("sources", []) or []:
        build = source.get("build")
        if isinstance(build, dict):
            capped = {k: scale.build_cap for k in ("count", "limit")
                      if isinstance(build.get(k), int) and build[k] > scale.build_cap}
            if capped:
                data.builds.setdefault(source["name"], {}).update(capped)
                changes += [(f"{source['name']}.build.{k}", build[k], v) for k, v in capped.items()]
    capped_epochs = [f"{s['name']} {s['max_epochs']:g}" for s in d.get("sources", []) or [] if "max_epochs" in s]
    data.lift_max_epochs = True
    if capped_epochs:
        changes.append(("max_epochs", ", ".join(capped_epochs), "not enforced"))


def _manifest_steps(train: dict, d: dict, batch: int) -> int:
    if train.get("steps"):
        return int(train["steps"])
    epochs = float(train.get("epochs") or 1.0)
    return max(1, math.ceil(epochs * int(d.get("train_samples", 1)) / int(train.get("batch_size", batch))))


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)
