"""Where a run starts: its own newest checkpoint, another run's weights, or from scratch.

    run dir has a valid checkpoint ─┬─ same plan ──────────────────► resume everything
                                    ├─ other plan, reset_progress ─► weights only, counters 0
                                    │                                (old files moved to archive/)
                                    └─ other plan ─────────────────► refused (one line)
    no checkpoint, init_from ──────────────────────────────────────► weights only, counters 0
    neither ───────────────────────────────────────────────────────► fresh

``init_from`` names a run (``hrm-stageA``), a run directory, a ``best-model`` directory or a
checkpoint file; a run directory means its ``best-model`` when it has one, else its newest
valid checkpoint. This is how stage B starts from stage A with a new mix and the auxiliaries on.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corpus.errors import UserError
from trainer.checkpoint import BEST, Checkpoints, load


@dataclass
class Start:
    kind: str  # "resume" | "reset" | "init_from" | "fresh"
    state: dict[str, Any] | None  # the loaded checkpoint (for init_from: {"model": ...})
    source: Path | None
    note: str = ""


def decide(ck: Checkpoints, plan_id: str, manifest_sha: str, reset_progress: bool,
           init_from: str | None, runs_dir: Path, is_main: bool = True, start_over: bool = False) -> Start:
    latest = ck.load_latest(refuse_all_bad=not start_over)
    if latest is None and start_over and ck.candidates():  # every checkpoint damaged, restart asked for
        archive = _archive(ck.run_dir, {"plan_id": "damaged", "step": "unknown"}) if is_main else None
        return Start("fresh", None, None, f"start_over: no loadable checkpoint; the run's files moved to {archive}")
    if latest is not None:
        state, path = latest
        same_plan = state.get("plan_id") == plan_id
        if same_plan and not (reset_progress and state.get("manifest_sha") != manifest_sha):
            note = "" if state.get("manifest_sha") == manifest_sha else " (the manifest changed; same plan)"
            return Start("resume", state, path, f"resuming from {path} at step {state['step']}{note}")
        if not reset_progress:
            raise UserError(
                f"{path} was trained on plan {state.get('plan_id')}, this manifest gives plan {plan_id}: "
                f"pass --reset_progress to keep the weights and restart the counters, or use another --run_name")
        archive = _archive(ck.run_dir, state) if is_main else None
        return Start("reset", _weights(state), path,
                     f"reset_progress: weights from {path} (step {state['step']}), counters from 0; "
                     f"earlier files moved to {archive}")
    if init_from:
        path = resolve_init_from(init_from, runs_dir)
        state = load(path)
        return Start("init_from", _weights(state), path, f"initialised from {path}")
    return Start("fresh", None, None)


def _weights(state: dict) -> dict:
    return {"model": state["model"], "model_config": state.get("model_config"),
            "gate_scale": state.get("gate_scale"), "step": state.get("step"), "config": state.get("config")}


def source_gate(state: dict | None, source: Path | None) -> float | None:
    """The gate scale the source weights were last trained with: recorded in checkpoints and
    best models since issue 12, else recomputed from the source run's schedule and step (the
    checkpoint's own config, or the ``config.json`` beside a ``best-model/model.pt``)."""
    from trainer.schedule import gate_scale

    if not state:
        return None
    if state.get("gate_scale") is not None:
        return float(state["gate_scale"])
    config = state.get("config")
    if config is None and source is not None and (Path(source).parent / "config.json").is_file():
        config = (Path(source).parent / "config.json").read_text()
    step = state.get("step")
    if not config or step is None:
        return None
    train = json.loads(config).get("train", {})
    if int(step) < 1:
        return 0.0
    return gate_scale(int(step) - 1, int(train.get("hrm_gate_warmup_steps", 0)), int(train.get("gate_ramp_steps", 0)))


def resolve_init_from(name: str, runs_dir: Path) -> Path:
    """A file to take weights from (see the module docstring for what ``name`` may be)."""
    for candidate in (Path(name), Path(runs_dir) / name):
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            if (candidate / "model.pt").is_file():
                return candidate / "model.pt"
            if (candidate / BEST / "model.pt").is_file():
                return candidate / BEST / "model.pt"
            latest = Checkpoints(candidate).load_latest()
            if latest is not None:
                return latest[1]
            raise UserError(f"init_from {name}: {candidate} has no best-model/ and no valid checkpoint")
    raise UserError(f"init_from {name}: no such file, run directory or run under {runs_dir}: stages run in "
                    f"order, so train the stage it names first (stage B starts from stage A's run: python -m "
                    f"trainer.run manifests/stageA.toml, with the same --scale), or import a pretrained Mamba2 "
                    f"(python -m trainer.import_hf ID --out {runs_dir}/NAME, then --init_from {runs_dir}/NAME)")


def _archive(run_dir: Path, state: dict) -> Path:
    """Move the previous plan's checkpoints, best model and metrics out of the way, so the reset
    run's own (lower-numbered) checkpoints are the newest ones from now on."""
    dest = run_dir / "archive" / f"{time.strftime('%Y%m%d-%H%M%S')}-{str(state.get('plan_id'))[:12]}-step{state['step']}"
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoints", BEST, "metrics.jsonl", "plots"):
        if (run_dir / name).exists():
            shutil.move(str(run_dir / name), str(dest / name))
    return dest
