"""``trainer.run manifests/stageA.toml --init_from runs/NAME --scale smoke`` starts from an import."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch

from tests.pretrained.conftest import REPO_ROOT

pytest.importorskip("transformers", reason="transformers is in the dev and hf extras")


def test_stage_a_smoke_starts_from_the_imported_checkpoint(imported_run, tmp_path):
    rng = random.Random(0)
    words = "the quick brown fox jumps over lazy dog mamba reads text one token at a time".split()
    text = tmp_path / "wiki.txt"
    text.write_text("".join(f" = Article {a} = \n\n " + " ".join(rng.choice(words) for _ in range(40)) + " .\n\n"
                            for a in range(200)))
    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "trainer.run", str(REPO_ROOT / "manifests" / "stageA.toml"), "--init_from",
         str(imported_run), "--scale", "smoke", "--steps", "2", "--from", f"wiki={text}",
         "--data_dir", str(tmp_path / "data"), "--runs_dir", str(runs)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"initialised from {imported_run / 'best-model' / 'model.pt'}" in done.stdout
    assert "the plan uses its tokenizer" in done.stdout and "the model is the import's" in done.stdout
    assert "gemm_4bit" not in done.stdout + done.stderr
    start = torch.load(imported_run / "best-model" / "model.pt", weights_only=True)
    final = torch.load(runs / "hrm-gated-pretrain-smoke" / "checkpoints" / "final.pt", weights_only=True)
    assert final["model_config"] == start["model_config"]
    # two AdamW steps at lr <= 2.5e-4 move a weight by at most ~5e-4: the run continued the checkpoint
    moved = max((final["model"][k].float() - v.float()).abs().max().item()
                for k, v in start["model"].items() if k.startswith("decoder."))
    assert 0 < moved < 2e-3, moved
