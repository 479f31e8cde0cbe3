"""In-training dev evals: ``[eval] dev_suites`` parsed and validated, ``run_dev_evals`` logs
``dev/<suite>/<metric>`` records without touching the RNGs or the training mode, and the plots
pick them up."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from corpus.errors import UserError
from tests.eval import tiny_run
from trainer.eval.dev import dev_series, run_dev_evals

torch.set_num_threads(1)


def session(tmp_path: Path, info, model, dev_suites, metrics):
    """The attributes of trainer.session.Session that run_dev_evals reads, from real components."""
    from trainer.config import EvalSection, TrainSection

    cfg = SimpleNamespace(eval=EvalSection(dev_suites=dev_suites, dev_limit=4, eval_batch_size=4),
                          train=TrainSection(batch_size=4), run_dir=tmp_path / "run")
    said: list[str] = []
    s = SimpleNamespace(cfg=cfg, world=SimpleNamespace(is_main=True), model=model, device=torch.device("cpu"),
                        data=SimpleNamespace(tokenizer=info, data_root=str(tmp_path / "data"), max_seq_len=48),
                        plan=SimpleNamespace(id=None), metrics=metrics, say=said.append)
    return s, said


def test_dev_evals_log_metrics_and_leave_training_state_alone(tmp_path, monkeypatch):
    from trainer.metrics import MetricsLog, read_metrics
    from trainer.model import HRMMamba2LM
    from trainer.plot import plot_run

    monkeypatch.setenv("HRM_EVAL_DATA", str(tmp_path / "no-benchmarks"))
    info = tiny_run.train_tokenizer_file(tmp_path / "tokenizer.json")
    torch.manual_seed(0)
    model = HRMMamba2LM(tiny_run.tiny_config(info.vocab_size)).train()
    metrics = MetricsLog(tmp_path / "run" / "metrics.jsonl")
    for step in (10, 20):
        metrics.write({"kind": "train", "step": step, "loss": 3.0, "lm_loss": 3.0, "lr": 1e-3, "gate_scale": 1.0,
                       "gate_mean": 0.5, "gate_min": 0.4, "gate_max": 0.6, "halt_sum_mean": 1.0,
                       "halt_sum_min": 0.9, "halt_sum_max": 1.1})
        metrics.write({"kind": "val", "step": step, "val_loss": 3.1})
    s, said = session(tmp_path, info, model, "arith,halting,gsm8k", metrics)

    rng = torch.get_rng_state()
    record = run_dev_evals(s, 20, gate=0.5)
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    assert record["kind"] == "dev" and record["step"] == 20
    assert record["dev/arith/n"] == 4 and 0.0 <= record["dev/arith/accuracy"] <= 1.0
    assert record["dev/halting/n"] == 4 and record["dev/halting/halt_sum_mean"] > 0
    assert record["dev/arith/seconds"] > 0 and not any(k.startswith("dev/gsm8k/") for k in record)
    assert sum("dev gsm8k skipped" in line for line in said) == 1
    assert run_dev_evals(s, 40, gate=0.5)["dev/arith/n"] == 4
    assert sum("dev gsm8k skipped" in line for line in said) == 1  # a missing suite is reported once
    metrics.close()

    dev = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "dev"]
    assert [r["step"] for r in dev] == [20, 40] and dev[0] == {**record}
    series = dev_series(dev)
    assert "dev/arith/accuracy" in series["arith"] and "dev/arith/arith/accuracy" in series["arith"]
    assert "dev/halting/tier0/halt_sum_mean" in series["halting"] and "dev/arith/n" not in series["arith"]
    names = {p.name for p in plot_run(tmp_path / "run")}
    assert {"dev_arith.png", "dev_halting.png", "loss.png"} <= names


def test_dev_evals_off_by_default(tmp_path):
    from trainer.metrics import MetricsLog

    metrics = MetricsLog(tmp_path / "metrics.jsonl")
    s, said = session(tmp_path, None, None, [], metrics)
    assert run_dev_evals(s, 10, gate=0.0) is None and said == []
    metrics.close()
    assert not (tmp_path / "metrics.jsonl").exists()  # the log opens on its first record


def test_dev_suites_in_the_manifest_and_as_a_flag(tmp_path):
    from trainer.config import load_config, parse_command_line

    manifest = tmp_path / "m.toml"
    manifest.write_text('[run]\nname = "x"\n[eval]\ndev_suites = ["arith", "halting"]\ndev_limit = 8\n')
    cfg = load_config(parse_command_line([str(manifest)]))
    assert cfg.eval.dev_suites == ["arith", "halting"] and cfg.eval.dev_limit == 8
    cfg = load_config(parse_command_line([str(manifest), "--dev_suites", "gsm8k,ppl"]))
    assert cfg.eval.dev_suites == ["gsm8k", "ppl"]
    with pytest.raises(UserError, match=r"--dev_suites: unknown suite 'mmlu'"):
        load_config(parse_command_line([str(manifest), "--dev_suites", "arith,mmlu"]))
    manifest.write_text('[eval]\ndev_suites = ["nope"]\n')
    with pytest.raises(UserError, match=r"\[eval\]\.dev_suites: unknown suite 'nope'"):
        load_config(parse_command_line([str(manifest)]))
