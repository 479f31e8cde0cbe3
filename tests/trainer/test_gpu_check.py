"""bench/gpu_check.py: skips cleanly without CUDA, and the parts that need no GPU work on CPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest
import torch

from .conftest import REPO, env

torch.set_num_threads(1)


def gpu_check():
    if "gpu_check" not in sys.modules:  # a script, not a package module: load it by path once
        spec = importlib.util.spec_from_file_location("gpu_check", REPO / "bench" / "gpu_check.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules["gpu_check"] = module  # dataclasses look their module up here
        spec.loader.exec_module(module)
    return sys.modules["gpu_check"]


def test_without_cuda_every_row_skips_with_the_reason_and_exits_0(tmp_path):
    if torch.cuda.is_available():  # pragma: no cover
        pytest.skip("a CUDA machine runs the real checks")
    out = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_check.py"), "--json", str(tmp_path / "r.json")],
                         capture_output=True, text=True, env=env(), timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("gpu_check: no CUDA device") and "mamba_ssm not installed" in lines[0]
    rows = lines[3:]
    assert [r.split()[0] for r in rows][:3] == ["mixer", "parity", "parity"] and len(rows) == len(gpu_check().ROWS)
    assert all("SKIP    no CUDA device" in r for r in rows)


def test_fused_adamw_skips_a_non_finite_update_on_the_device():
    """The device-side skip the trainer uses on CUDA (trainer/step.py), here with CPU fused AdamW."""
    row = gpu_check().skip_on_inf_row(torch.device("cpu"))
    assert row.status == "PASS", row.detail
    assert row.detail == "skipped True, weights unchanged True, step counts unchanged True"


def test_a_failing_row_makes_the_exit_status_1(monkeypatch):
    module = gpu_check()
    monkeypatch.setattr(module, "run_checks", lambda args: [module.Row("parity fp32", "FAIL", "logits 1e-1"),
                                                            module.Row("nccl 2 ranks", "SKIP", "1 GPU here")])
    assert module.main([]) == 1
    monkeypatch.setattr(module, "run_checks", lambda args: [module.Row("nccl 2 ranks", "SKIP", "1 GPU here")])
    assert module.main([]) == 0
