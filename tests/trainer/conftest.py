"""Trainer test fixtures: a tiny real data root (trained tokenizer, two synthetic sources built
and published, a registered plan), built once per session with ``python -m corpus.mix``, and a
helper that runs ``python -m trainer.run`` in a subprocess on one CPU thread.

Trainer runs are subprocesses because ``trainer.run`` sets process-wide switches (deterministic
algorithms, seeds) that must not leak into other tests, and because the resume test kills one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[2]

DATA = """
[run]
name = "tiny"

[data]
tokenizer = "tokenizers/tiny.json"
max_seq_len = 192
train_samples = 600
val_samples = 24
seed = {seed}
window = 50

[data.tokenizer_train]
vocab_size = 320
synthetic = 300

[[data.sources]]
name = "synthetic:arith"
weight = 0.6
build = {{ count = 120, tiers = "0-1", val_ratio = 0.1, max_bad_ratio = 0.5 }}

[[data.sources]]
name = "synthetic:counting"
weight = 0.4
build = {{ count = 120, tiers = "0-1", val_ratio = 0.1, max_bad_ratio = 0.5 }}
"""

TRAINER = """
[model]
d_model = 32
n_layers = 2
d_state = 8
headdim = 16
chunk_size = 16
d_hrm = 16
hrm_slots = 2
hrm_heads = 2

[train]
batch_size = 4
steps = 12
learning_rate = 0.003
warmup_steps = 2
log_steps = 1
checkpoint_every = 2
checkpoint_limit = 3
bucket_batches = 2
hrm_gate_warmup_steps = 4
gate_ramp_steps = 4

[eval]
val_every = 4
eval_batch_size = 8
"""


def env() -> dict[str, str]:
    e = dict(os.environ)
    e.update(PYTHONPATH=str(REPO) + os.pathsep + e.get("PYTHONPATH", ""), OMP_NUM_THREADS="1",
             MKL_NUM_THREADS="1", HF_HUB_OFFLINE="1", COLUMNS="200")
    return e


@dataclass
class Tiny:
    root: Path  # data root
    manifest: Path  # data + trainer sections
    base: Path  # a temporary directory for runs

    def manifest_with(self, seed: int = 0, extra: str = "") -> Path:
        """A manifest over the same sources; another ``seed`` gives another plan."""
        path = self.base / f"tiny-seed{seed}.toml"
        path.write_text(DATA.format(seed=seed) + TRAINER + extra)
        return path

    def run(self, *flags: str, manifest: Path | None = None, runs: Path | None = None, timeout: float = 240,
            check: bool = True) -> subprocess.CompletedProcess:
        cmd = self.command(*flags, manifest=manifest, runs=runs)
        result = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=self.base, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"trainer failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def command(self, *flags: str, manifest: Path | None = None, runs: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "trainer.run", str(manifest or self.manifest), "--data_dir", str(self.root),
                "--runs_dir", str(runs or self.base / "runs"), *flags]


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> Tiny:
    base = tmp_path_factory.mktemp("trainer")
    t = Tiny(base / "data", base / "tiny.toml", base)
    t.manifest.write_text(DATA.format(seed=0) + TRAINER)
    built = subprocess.run([sys.executable, "-m", "corpus.mix", str(t.manifest), "--data-dir", str(t.root)],
                           capture_output=True, text=True, env=env(), timeout=600)
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-2000:]
    return t
