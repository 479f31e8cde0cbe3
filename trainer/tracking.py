"""Experiment trackers fed from the same records as ``metrics.jsonl``: TensorBoard event files in
``RUN/tensorboard/`` and, when asked (``[train] wandb = "offline" | "online"``) and installed,
Weights & Biases.

``metrics.jsonl`` stays the source of truth: a tracker receives each record after it is written
there, as scalars named ``<kind>/<field>`` (``train/loss``, ``val/val_loss``, ``dev/arith/accuracy``)
at the record's step, so what TensorBoard shows is what the log holds. A resumed run passes the
step it resumes from and TensorBoard drops the events a killed run wrote past it (``purge_step``),
like :func:`trainer.metrics.truncate_after` does for the log. A tracker that fails to start is
reported once and left out; it never stops training.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Protocol

SKIP_FIELDS = {"step", "kind", "best", "event", "plan_id", "bad_evals", "patience"}


class Tracker(Protocol):
    def log(self, record: dict[str, Any]) -> None: ...
    def close(self) -> None: ...


def scalars(record: dict[str, Any]) -> dict[str, float]:
    """The record's numeric fields as ``<kind>/<field>`` (dev fields already carry ``dev/``)."""
    kind = record.get("kind", "train")
    out = {}
    for key, value in record.items():
        if key in SKIP_FIELDS or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if not math.isfinite(float(value)):
            continue
        out[key if key.startswith(f"{kind}/") else f"{kind}/{key}"] = float(value)
    return out


class TensorBoard:
    """``torch.utils.tensorboard.SummaryWriter`` over ``RUN/tensorboard``."""

    def __init__(self, log_dir: Path, resume_step: int | None = None):
        from torch.utils.tensorboard import SummaryWriter

        # purge_step: events at steps >= it, left by a killed run, are discarded on the first write
        self.writer = SummaryWriter(str(log_dir), purge_step=None if resume_step is None else resume_step + 1,
                                    flush_secs=30)

    def log(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        for tag, value in scalars(record).items():
            self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


class WandB:
    """A W&B run in ``RUN/wandb`` (offline mode needs no network; ``wandb sync`` uploads later)."""

    def __init__(self, run_dir: Path, mode: str, project: str, name: str, config: dict[str, Any],
                 resume_step: int | None = None):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, name=name, dir=str(run_dir), mode=mode, config=config,
                              id=_wandb_id(run_dir), resume="allow", settings=wandb.Settings(silent=True))
        self.last_step = -1 if resume_step is None else resume_step

    def log(self, record: dict[str, Any]) -> None:
        step = int(record.get("step", 0))
        values = scalars(record)
        if values:
            self.run.log(values, step=max(step, self.last_step))  # W&B refuses steps that go back
            self.last_step = max(step, self.last_step)

    def close(self) -> None:
        self.run.finish()


def _wandb_id(run_dir: Path) -> str:
    """One W&B run id per run directory, kept in the directory so a resume continues it."""
    import secrets

    path = Path(run_dir) / "wandb" / "run-id"
    if path.is_file():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    run_id = secrets.token_hex(4)
    path.write_text(run_id + "\n")
    return run_id


def open_trackers(run_dir: Path, train_cfg, run_name: str, config: dict[str, Any], resume_step: int | None,
                  warn: Callable[[str], None]) -> list[Tracker]:
    """The trackers ``[train]`` asks for; one that cannot start is a warning, not a failure."""
    trackers: list[Tracker] = []
    if getattr(train_cfg, "tensorboard", False):
        try:
            trackers.append(TensorBoard(Path(run_dir) / "tensorboard", resume_step))
        except ImportError:
            warn("tensorboard is not installed: no event files (pip install tensorboard); metrics.jsonl has it all")
    mode = getattr(train_cfg, "wandb", "off")
    if mode != "off":
        try:
            trackers.append(WandB(Path(run_dir), mode, train_cfg.wandb_project, run_name, config, resume_step))
        except ImportError:
            warn("wandb is not installed: W&B logging off (pip install wandb)")
        except Exception as exc:  # noqa: BLE001 - a tracker must never stop training
            warn(f"W&B did not start ({type(exc).__name__}: {str(exc).splitlines()[0][:160]}); logging to "
                 "metrics.jsonl and TensorBoard only")
    return trackers
