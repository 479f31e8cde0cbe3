"""Checkpoints: ``runs/<name>/checkpoints/step_N.pt`` (rotated), ``final.pt`` and ``best-model/``.

Every file is written to a temporary name, fsynced and renamed; then a sidecar
``<file>.meta.json`` records its step, size and sha256. A checkpoint without a sidecar (killed
between the two renames) or whose bytes no longer match it is reported and skipped, and the
resume falls back to the previous one. ``best-model/`` is replaced as a whole directory: the new
one is built beside it and swapped in with two renames.

A training checkpoint is a plain dict of tensors, numbers and strings (``torch.load`` with
``weights_only=True`` reads it): model, optimizer, grad scaler, step (= scheduler position),
plan cursor, RNG states, manifest sha, plan id and the run configuration.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import random
import re
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from corpus.atomic import atomic_path, fsync_dir, fsync_file, sha256_file, write_bytes_atomic

STEP_FILE = re.compile(r"^step_(\d+)\.pt$")
FINAL = "final.pt"
BEST = "best-model"
CHECKSUMS = "checksums.json"  # in best-model/: sha256 of each file, written before the swap


class Checkpoints:
    """The checkpoints of one run directory."""

    def __init__(self, run_dir: Path, limit: int = 5, warn: Callable[[str], None] = print):
        self.run_dir = Path(run_dir)
        self.dir = self.run_dir / "checkpoints"
        self.limit = limit
        self.warn = warn

    # ------------------------------------------------------------------ writing
    def save(self, state: dict[str, Any], final: bool = False) -> Path:
        """Write ``step_N.pt`` (or ``final.pt``) atomically with its sidecar, then rotate."""
        path = self.dir / (FINAL if final else f"step_{int(state['step'])}.pt")
        _write_torch(path, state)
        meta = {"step": int(state["step"]), "bytes": path.stat().st_size, "sha256": sha256_file(path)}
        write_bytes_atomic(_meta_path(path), json.dumps(meta).encode())
        if not final:
            self.rotate()
        return path

    def rotate(self) -> None:
        """Keep the newest ``limit`` step checkpoints; ``final.pt`` is never rotated out."""
        steps = self.step_files()
        for path in steps[: max(0, len(steps) - self.limit)]:
            for p in (path, _meta_path(path)):
                p.unlink(missing_ok=True)

    def step_files(self) -> list[Path]:
        if not self.dir.exists():
            return []
        found = [(int(m.group(1)), p) for p in self.dir.iterdir() if (m := STEP_FILE.match(p.name))]
        return [p for _, p in sorted(found)]

    # ------------------------------------------------------------------ reading
    def candidates(self) -> list[tuple[int, Path]]:
        """Every checkpoint newest first: by the step in its sidecar (or name), final before a
        step file of the same step."""
        out = []
        for path in self.step_files() + ([self.dir / FINAL] if (self.dir / FINAL).exists() else []):
            meta = _read_meta(path)
            step = meta["step"] if meta else int(STEP_FILE.match(path.name).group(1)) if path.name != FINAL else -1
            out.append((step, path.name == FINAL, path))
        return [(step, path) for step, _, path in sorted(out, reverse=True)]

    def load_latest(self, map_location="cpu", refuse_all_bad: bool = False) -> tuple[dict[str, Any], Path] | None:
        """The newest checkpoint that verifies; each one that does not is reported.

        ``refuse_all_bad``: when the run has checkpoints and none loads, raise one line instead
        of returning None — a silent restart from step 0 would overwrite ``final.pt`` and the
        intact best model with a model trained from scratch.
        """
        problems = []
        for _, path in self.candidates():
            problem = verify(path)
            if problem is None:
                try:
                    return load(path, map_location, verified=True), path
                except Exception as exc:  # noqa: BLE001 - any unreadable file means "use the previous"
                    problem = f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
            problems.append(f"{path.name}: {problem}")
            self.warn(f"checkpoint {path} is {problem}; falling back to the previous one")
        if problems and refuse_all_bad:
            from corpus.errors import UserError

            raise UserError(f"{self.dir}: none of its {len(problems)} checkpoints is loadable ({problems[0]}"
                            + (f"; and {len(problems) - 1} more" if len(problems) > 1 else "")
                            + "): refusing to restart from step 0 over them; pass --start_over to train "
                              "from scratch (the run's files are moved to archive/ first)")
        return None

    # ------------------------------------------------------------------ best model
    def save_best(self, weights: dict[str, torch.Tensor], files: dict[str, bytes | Path]) -> Path:
        """Replace ``best-model/`` with ``model.pt`` (weights + model config) and ``files``
        (config.json, plan.json, tokenizer.json ...), all or nothing.

        Never with a worse model: a best model of the same plan whose recorded validation loss
        is at most ``weights["val_loss"]`` is kept (a restarted count's first validation always
        "improves" on nothing)."""
        final = self.run_dir / BEST
        kept = _better_best(final, weights)
        if kept is not None:
            self.warn(f"{final} kept: its validation loss {kept:.4f} is not worse than "
                      f"{float(weights['val_loss']):.4f}")
            return final
        tmp = self.run_dir / f".{BEST}.tmp-{os.getpid()}"
        old = self.run_dir / f".{BEST}.old"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        _write_torch(tmp / "model.pt", weights)
        for name, content in files.items():
            if isinstance(content, Path):
                shutil.copyfile(content, tmp / name)
            else:
                (tmp / name).write_bytes(content)
        sums = {p.name: sha256_file(p) for p in sorted(tmp.iterdir())}
        (tmp / CHECKSUMS).write_text(json.dumps(sums, indent=1) + "\n")  # what every reader checks
        for p in tmp.iterdir():
            fsync_file(p)
        fsync_dir(tmp)
        shutil.rmtree(old, ignore_errors=True)
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        fsync_dir(self.run_dir)
        shutil.rmtree(old, ignore_errors=True)
        return final

    def recover_best(self) -> None:
        """A crash between the two renames of :meth:`save_best` leaves only ``.best-model.old``."""
        old = self.run_dir / f".{BEST}.old"
        if old.exists():
            if (self.run_dir / BEST).exists():
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(old, self.run_dir / BEST)


def _better_best(best_dir: Path, weights: dict) -> float | None:
    """The existing best model's validation loss when it is of the same plan and not worse."""
    if "val_loss" not in weights:
        return None
    try:
        info = json.loads((best_dir / "plan.json").read_text())
        old_loss = float(info["val_loss"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    same_plan = info.get("plan_id") == weights.get("plan_id")
    return old_loss if same_plan and old_loss <= float(weights["val_loss"]) else None


def verify(path: Path) -> str | None:
    """None when ``path`` matches its sidecar, else what is wrong with it."""
    meta = _read_meta(path)
    if meta is None:
        return "incomplete (no sidecar)"
    size = path.stat().st_size
    if size != meta.get("bytes"):
        return f"corrupt (size {size} != {meta.get('bytes')})"
    if sha256_file(path) != meta.get("sha256"):
        return "corrupt (sha256 mismatch)"
    return None


def load(path: Path, map_location="cpu", verified: bool = False) -> dict[str, Any]:
    """A checkpoint or best model, checked first against its sidecar or the best model's
    ``checksums.json`` (a flipped byte is one line naming the file, never a silently used model).

    Fails closed: a file with neither is refused like a corrupt one (deleting the checksum is
    not a way around it). A pickle that needs a global a safe load does not run is one line too.
    """
    from corpus.errors import UserError

    path = Path(path)
    if not verified:
        problem = integrity_problem(path)
        if problem:
            raise UserError(f"{problem}; retrain, or use another checkpoint of the run")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        needs = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f"the pickle global {needs.group(1)}" if needs else "a pickle construct"
        raise UserError(f"{path}: refused: it needs {what}, which a safe load never runs (a checkpoint of "
                        f"this project holds only tensors, numbers and strings); nothing was loaded") from None


def integrity_problem(path: Path) -> str | None:
    """None when ``path`` verifies against its checksums, else what is wrong (missing included)."""
    path = Path(path)
    if (path.parent / CHECKSUMS).is_file():
        problem = verify_best(path.parent)
        if problem is None and path.name not in _listed(path.parent):
            problem = f"{path}: not listed in {path.parent / CHECKSUMS}"
        return problem
    if _meta_path(path).is_file():
        problem = verify(path)
        return f"{path} is {problem}" if problem else None
    if path.parent.name == BEST or path.name == "model.pt":
        return f"{path.parent / CHECKSUMS}: missing, so {path} cannot be checked"
    return f"{_meta_path(path)}: missing, so {path} cannot be checked (a checkpoint's sidecar)"


def _listed(directory: Path) -> set[str]:
    try:
        return set(json.loads((directory / CHECKSUMS).read_text()))
    except (OSError, ValueError, TypeError):
        return set()


def verify_best(directory: Path) -> str | None:
    """None when every file ``checksums.json`` lists matches it, else what is wrong."""
    try:
        sums = json.loads((directory / CHECKSUMS).read_text())
        if not isinstance(sums, dict):
            raise ValueError
    except (OSError, ValueError):
        return f"{directory / CHECKSUMS}: unreadable"
    for name, digest in sums.items():
        f = directory / name
        if not f.is_file():
            return f"{f}: missing (listed in {CHECKSUMS})"
        if sha256_file(f) != digest:
            return f"{f} is corrupt (sha256 does not match {CHECKSUMS})"
    return None


def _write_torch(path: Path, obj: Any) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    with atomic_path(path) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + ".meta.json")


def _read_meta(path: Path) -> dict | None:
    try:
        return json.loads(_meta_path(path).read_text())
    except (OSError, ValueError):
        return None


# -- RNG states as plain containers (weights_only-loadable) -------------------------------------

def rng_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": [version, torch.tensor(internal, dtype=torch.int64), gauss_next],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(int(x) for x in internal.tolist()), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
