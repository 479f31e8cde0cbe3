"""Diagnostics: one rich console line and one ``metrics.jsonl`` record per ``log_steps``.

Records are ``{"kind": "train" | "val" | "event", "step": N, ...}``, one JSON object a line,
flushed as written, so a killed run loses at most the line being written. On resume the file
is cut back to the checkpoint's step (:func:`truncate_after`), so a resumed run's log equals an
uninterrupted one's.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from corpus.atomic import atomic_path

TRAIN_LINE = ("[bold]step {step:>6}[/]  loss {loss:.4f} (lm {lm_loss:.4f} ds {ds_loss:.4f} halt {halt_loss:.4f})"
              "  lr {lr:.2e}  |g| {grad_norm:.2f}  {tokens_per_s:,.0f} tok/s  pad {pad_frac:.0%}"
              "  gate μ {gate_mean:.3f} [{gate_min:.2f},{gate_max:.2f}] (s {gate_scale:.2f})"
              "  halt Σ {halt_sum_mean:.2f} [{halt_sum_min:.2f},{halt_sum_max:.2f}]")


class MetricsLog:
    def __init__(self, path: Path, console=None, enabled: bool = True):
        self.path = Path(path)
        self.console = console
        self.enabled = enabled
        self._file = None
        self.trackers: list = []  # trainer.tracking: TensorBoard / W&B, fed each record after the log
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._file.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
        self._file.flush()
        for tracker in self.trackers:
            tracker.log(record)

    def train(self, record: dict[str, Any]) -> None:
        self.write({"kind": "train", **record})
        line = TRAIN_LINE.format(**record)
        if "tokens" in record and "eta_s" in record:
            line += f"  {record['tokens']:,} tok seen  ETA {format_eta(record['eta_s'])}"
        self.print(line)

    def val(self, record: dict[str, Any]) -> None:
        self.write({"kind": "val", **record})
        mark = "  [green]best[/]" if record.get("best") else ""
        stop = f"  patience {record['bad_evals']}/{record['patience']}" if record.get("patience") else ""
        self.print(f"[bold cyan]val  {record['step']:>6}[/]  loss {record['val_loss']:.4f}"
                   f"  ({record['val_tokens']:,} tokens){mark}{stop}")

    def print(self, text: str) -> None:
        if self.enabled and self.console is not None:
            self.console.print(text, highlight=False)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        for tracker in self.trackers:
            tracker.close()
        self.trackers = []


def format_eta(seconds: float) -> str:
    """``3h07m``, ``12m05s``, ``41s``: what is left of a run at its current pace."""
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else (f"{minutes}m{secs:02d}s" if minutes else f"{secs}s")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """Every complete record (a torn last line from a kill is ignored)."""
    out = []
    if not Path(path).exists():
        return out
    for line in Path(path).read_bytes().splitlines():
        try:
            out.append(orjson.loads(line))
        except orjson.JSONDecodeError:
            continue
    return out


def truncate_after(path: Path, step: int) -> int:
    """Drop records past ``step`` (written after the checkpoint a resume starts from).
    Returns how many were dropped."""
    path = Path(path)
    if not path.exists():
        return 0
    records = read_metrics(path)
    keep = [r for r in records if int(r.get("step", 0)) <= step]
    dropped = len(records) - len(keep)
    if dropped or path.stat().st_size and not path.read_bytes().endswith(b"\n"):
        with atomic_path(path) as tmp:
            tmp.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in keep))
    return dropped

