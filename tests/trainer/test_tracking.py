"""TensorBoard (and W&B offline) get the same numbers as metrics.jsonl, and a resumed run's
event files hold each step once, like its log."""

from __future__ import annotations

import pytest

from trainer.metrics import read_metrics
from trainer.tracking import scalars

pytestmark = pytest.mark.slow  # trainer subprocesses


def events(log_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_scalars_name_fields_by_kind():
    assert scalars({"kind": "train", "step": 3, "loss": 2.5, "lr": 1e-3, "best": True, "ids_sha": "ab"}) == \
        {"train/loss": 2.5, "train/lr": 1e-3}
    assert scalars({"kind": "dev", "step": 4, "dev/arith/accuracy": 0.5, "nan": float("nan")}) == \
        {"dev/arith/accuracy": 0.5}


def test_tensorboard_and_wandb_offline_read_back_the_log(tiny):
    runs = tiny.base / "tracking-runs"
    tiny.run("--steps", "6", "--wandb", "offline", runs=runs)
    tiny.run("--steps", "10", runs=runs)  # resumes from final.pt of step 6 and goes on
    run_dir = runs / "tiny"
    log = read_metrics(run_dir / "metrics.jsonl")
    tb = events(run_dir / "tensorboard")
    for kind, field in (("train", "loss"), ("train", "lm_loss"), ("train", "lr"), ("train", "grad_norm"),
                        ("train", "tokens_per_s"), ("train", "gate_mean"), ("train", "halt_sum_mean"),
                        ("val", "val_loss")):
        want = [(r["step"], r[field]) for r in log if r["kind"] == kind]
        got = tb[f"{kind}/{field}"]
        assert [s for s, _ in got] == [s for s, _ in want], field  # each step once, resume included
        assert [v for _, v in got] == pytest.approx([v for _, v in want], rel=1e-6, abs=1e-9), field
    assert [s for s, _ in tb["train/loss"]] == list(range(1, 11))
    offline = list((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(offline) == 1 and offline[0].stat().st_size > 0
