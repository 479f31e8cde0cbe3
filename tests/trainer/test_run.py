"""``python -m trainer.run`` end to end on the tiny plan, as subprocesses.

One uninterrupted reference run (12 steps) is compared with: a run killed with SIGKILL between
two checkpoints and restarted (exact resume, the whole metrics.jsonl included), a rerun whose
newest checkpoint is corrupt, a rerun on another plan (refused, then reset), runs initialised
from the reference (with and without a gate ramp), and torchrun.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from trainer.checkpoint import load
from trainer.metrics import read_metrics

from .conftest import env

pytestmark = pytest.mark.slow  # subprocess runs: ~2 min of CPU in all; `-m "not slow"` skips them

def records(run_dir, kind):
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == kind]


@pytest.fixture(scope="module")
def reference(tiny):
    runs = tiny.base / "ref-runs"
    result = tiny.run(runs=runs)
    return runs / "tiny", result


def test_reference_run_layout(tiny, reference):
    run_dir, result = reference
    ck = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert ck == ["final.pt", "final.pt.meta.json", "step_10.pt", "step_10.pt.meta.json", "step_12.pt",
                  "step_12.pt.meta.json", "step_8.pt", "step_8.pt.meta.json"]  # checkpoint_limit = 3
    state = load(run_dir / "checkpoints" / "step_10.pt")
    plan = json.loads((run_dir / "best-model" / "plan.json").read_text())
    assert state["step"] == 10 and state["plan_id"] == plan["plan_id"] and len(state["manifest_sha"]) == 64
    assert state["plan_cursor"] == 40  # window of 2 batches x 4 samples: steps 10-11 start at position 40
    assert {"optimizer", "rng", "patience", "model_config", "samples_seen"} <= set(state)

    train, val = records(run_dir, "train"), records(run_dir, "val")
    assert [r["step"] for r in train] == list(range(1, 13)) and [r["step"] for r in val] == [4, 8, 12]
    assert all(r["gate_mean"] == 0 for r in train[:4]) and all(r["gate_mean"] > 0 for r in train[4:])
    assert [r["gate_scale"] for r in train[3:9]] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]
    assert train[-1]["loss"] < train[0]["loss"] and all(r["tokens_per_s"] > 0 for r in train)
    assert all(0 <= r["pad_frac"] < 1 and r["halt_sum_mean"] == 0 for r in train)  # halting off here
    assert all(0 < r["gate_raw_mean"] < 1 and r["skipped"] == 0 for r in train)  # the head's gate, also while shut
    assert all(r["lm_mem_loss"] > 0 and r["ds_loss"] == 0 for r in train)  # DS off here
    from trainer.model import kernels

    if kernels.status()[0] is None:
        assert f"mixer pure SSD ({kernels.status()[1]})" in " ".join(result.stdout.split())

    best = run_dir / "best-model"
    assert sorted(p.name for p in best.iterdir()) == ["checksums.json", "config.json", "model.pt", "plan.json",
                                                     "tokenizer.json"]
    best_val = min(val, key=lambda r: r["val_loss"])
    assert plan["step"] == best_val["step"] and plan["val_loss"] == pytest.approx(best_val["val_loss"])
    from trainer.model import HRMMamba2LM, ModelConfig

    saved = load(best / "model.pt")
    HRMMamba2LM(ModelConfig(**saved["model_config"])).load_state_dict(saved["model"])
    assert sorted(p.name for p in (run_dir / "plots").iterdir()) == ["gate.png", "halt.png", "loss.png",
                                                                    "lr.png", "val_loss.png"]
    assert f"plots: {run_dir / 'plots'}" in result.stdout and "unigram entropy" in result.stdout

    again = tiny.run(runs=run_dir.parent)  # finished: a rerun resumes from final.pt and does nothing
    assert "nothing to do" in again.stdout and len(records(run_dir, "train")) == 12


def whole_log(run_dir):
    """Every record of metrics.jsonl but wall-clock fields (rate, elapsed, ETA) and the resume's own start event."""
    return [{k: v for k, v in r.items() if k not in ("tokens_per_s", "elapsed_s", "eta_s")}
            for r in read_metrics(run_dir / "metrics.jsonl") if not (r["kind"] == "event" and r["event"] == "resume")]


def test_sigkill_between_checkpoints_and_restart_repeats_the_uninterrupted_run(tiny, reference):
    """Killed after step 5 or 6 with the newest checkpoint at step 4: the resumed run's whole
    metrics.jsonl equals the uninterrupted run's (the records the killed run wrote past its
    checkpoint are dropped and written again), and so do its final weights."""
    ref_dir, _ = reference
    runs = tiny.base / "killed-runs"
    cmd = tiny.command("--dataset_workers", "2", "--checkpoint_every", "4", runs=runs)  # the reference read in-process
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env(), cwd=tiny.base)
    log = runs / "tiny" / "metrics.jsonl"
    deadline = time.time() + 240
    while proc.poll() is None and time.time() < deadline:
        if any(r["kind"] == "train" and r["step"] >= 5 for r in read_metrics(log)):
            break
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    checkpoints = runs / "tiny" / "checkpoints"
    assert (checkpoints / "step_4.pt.meta.json").exists() and not (checkpoints / "step_8.pt").exists(), "not killed mid-run"
    written = [r["step"] for r in read_metrics(log) if r["kind"] == "train"]
    assert written[-1] in (5, 6, 7), written  # past the checkpoint: these records must be redone

    result = tiny.run("--dataset_workers", "2", "--checkpoint_every", "4", runs=runs)
    assert "resuming from" in result.stdout and "at step 4" in result.stdout
    assert f"metrics.jsonl: dropped {written[-1] - 4} records written after step 4" in " ".join(result.stdout.split())
    got, want = whole_log(runs / "tiny"), whole_log(ref_dir)
    assert [r["step"] for r in got if r["kind"] == "train"] == list(range(1, 13))
    assert got == want
    a, b = load(checkpoints / "final.pt"), load(ref_dir / "checkpoints" / "final.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])


def test_corrupt_newest_checkpoint_falls_back_to_the_previous(tiny, reference):
    ref_dir, _ = reference
    runs = tiny.base / "corrupt-runs"
    shutil.copytree(ref_dir, runs / "tiny")
    final = runs / "tiny" / "checkpoints" / "final.pt"
    data = bytearray(final.read_bytes())
    data[-100] ^= 0xFF
    final.write_bytes(bytes(data))
    # what kills during checkpoint writes leave behind (issue 22): reclaimed by the next run
    leftovers = [runs / "tiny" / "checkpoints" / ".step_13.pt.tmp-4242", runs / "tiny" / "checkpoints" / ".final.pt.tmp-4243",
                 runs / "tiny" / ".best-model.tmp-4244"]
    leftovers[0].write_bytes(b"x" * 1000)
    leftovers[1].write_bytes(b"x" * 1000)
    leftovers[2].mkdir()
    (leftovers[2] / "model.pt").write_bytes(b"x" * 1000)
    result = tiny.run("--steps", "14", runs=runs)
    assert "final.pt is corrupt (sha256 mismatch); falling back to the previous one" in " ".join(result.stdout.split())
    assert "at step 12" in result.stdout
    assert [r["step"] for r in records(runs / "tiny", "train")] == list(range(1, 15))
    assert load(final)["step"] == 14
    assert not any(p.exists() for p in leftovers) and "removed 3 temporary file(s) of killed writes" in result.stdout


def test_a_second_run_of_the_same_name_is_refused_and_the_first_is_intact(tiny, reference):
    """Issue 22: two trainer.run with one run name at once. The first holds the run directory's
    lock (stopped with SIGSTOP while it holds it, so the timing is certain); the second exits
    with one line naming the first's pid; the first then finishes as if alone."""
    ref_dir, _ = reference
    runs = tiny.base / "twin-runs"
    shutil.copytree(ref_dir, runs / "tiny")
    first = subprocess.Popen(tiny.command("--steps", "14", runs=runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=env(), cwd=tiny.base)
    lock = runs / "tiny" / ".lock"
    deadline = time.time() + 240
    while first.poll() is None and time.time() < deadline:
        if lock.exists() and lock.read_text().strip() == str(first.pid):
            break
        time.sleep(0.01)
    first.send_signal(signal.SIGSTOP)
    try:
        second = tiny.run("--steps", "14", runs=runs, check=False)
    finally:
        first.send_signal(signal.SIGCONT)
    out, err = first.communicate(timeout=300)
    assert second.returncode != 0 and second.stderr.count("\n") == 1, second.stderr
    assert f"is in use by pid {first.pid}" in second.stderr and str(runs / "tiny") in second.stderr
    assert first.returncode == 0, err[-2000:]
    assert [r["step"] for r in records(runs / "tiny", "train")] == list(range(1, 15))  # one curve, no duplicate
    assert load(runs / "tiny" / "checkpoints" / "final.pt")["step"] == 14


def test_a_full_disk_during_training_is_one_line_and_the_last_good_checkpoint_resumes(tiny, reference):
    """Issue 22: the run directory on a small real tmpfs, filled up; the resumed run stops in one
    line naming what could not be written; with space back, the last good checkpoint resumes."""
    ref_dir, _ = reference
    disk = tiny.base / "full-disk"
    disk.mkdir()
    used = sum(p.stat().st_size for p in ref_dir.rglob("*") if p.is_file())
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={used + (8 << 20)}", "hrm-test-disk", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        runs = disk / "runs"
        shutil.copytree(ref_dir, runs / "tiny")
        stat = os.statvfs(disk)
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * max(0, stat.f_bavail * stat.f_frsize - (64 << 10)))
        full = tiny.run("--steps", "16", "--checkpoint_every", "2", runs=runs, check=False)
        assert full.returncode != 0 and "Traceback" not in full.stderr, full.stderr[-3000:]
        assert full.stderr.startswith("error: ") and full.stderr.count("\n") == 1, full.stderr
        assert "could not be written: the disk is full" in full.stderr
        (disk / "filler").unlink()
        again = tiny.run("--steps", "16", "--checkpoint_every", "2", runs=runs)
        assert "resuming from" in again.stdout
        assert [r["step"] for r in records(runs / "tiny", "train")] == list(range(1, 17))
        assert load(runs / "tiny" / "checkpoints" / "final.pt")["step"] == 16
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_run_names_are_one_safe_path_component(tiny, capsys):
    from trainer.run import main

    for name in ("../../escape", "/tmp/absolute", "a/b", "..", ".hidden"):
        assert main([str(tiny.manifest), "--run_name", name]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "a run name is one path component" in err, err
    assert not (tiny.base / "escape").exists() and not (tiny.base.parent / "escape").exists()


def test_other_plan_is_refused_unless_reset_progress(tiny, reference):
    ref_dir, _ = reference
    runs = tiny.base / "replan-runs"
    shutil.copytree(ref_dir, runs / "tiny")
    other = tiny.manifest_with(seed=1)
    refused = tiny.run(manifest=other, runs=runs, check=False)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1
    assert "was trained on plan" in refused.stderr and "--reset_progress" in refused.stderr

    reset = tiny.run("--reset_progress", "--steps", "3", manifest=other, runs=runs)
    assert "reset_progress: weights from" in " ".join(reset.stdout.split())
    run_dir = runs / "tiny"
    assert [r["step"] for r in records(run_dir, "train")] == [1, 2, 3]
    assert load(run_dir / "checkpoints" / "final.pt")["plan_id"] != load(ref_dir / "checkpoints" / "final.pt")["plan_id"]
    archived = list((run_dir / "archive").iterdir())
    assert len(archived) == 1 and (archived[0] / "checkpoints" / "final.pt").exists()
    again = tiny.run("--reset_progress", "--steps", "3", manifest=other, runs=runs)  # same plan now: no second reset
    assert "nothing to do" in again.stdout and len(list((run_dir / "archive").iterdir())) == 1


def test_init_from_another_run_with_deeper_cycles(tiny, reference):
    ref_dir, _ = reference
    runs = tiny.base / "init-runs"
    result = tiny.run("--init_from", str(ref_dir), "--run_name", "stageB", "--h_cycles", "3", "--use_halting", "1",
                      "--steps", "2", "--hrm_gate_warmup_steps", "0", runs=runs)
    assert f"initialised from {ref_dir / 'best-model' / 'model.pt'}" in " ".join(result.stdout.split())
    assert "was trained with the gate open" not in result.stdout  # the manifest ramps the gate
    train = records(runs / "stageB", "train")
    assert [r["step"] for r in train] == [1, 2] and train[0]["halt_sum_mean"] > 0
    assert load(runs / "stageB" / "checkpoints" / "final.pt")["model_config"]["h_cycles"] == 3
    hard = tiny.run("--init_from", str(ref_dir), "--run_name", "hard", "--steps", "1", "--hrm_gate_warmup_steps", "2",
                    "--gate_ramp_steps", "0", runs=runs)
    assert (f"{ref_dir / 'best-model' / 'model.pt'} was trained with the gate open (scale 1.00); this run closes the gate "
            "for 2 steps and reopens it at full strength in one step") in " ".join(hard.stdout.split())
    bad = tiny.run("--init_from", str(ref_dir), "--run_name", "wide", "--d_model", "48", runs=runs, check=False)
    assert bad.returncode == 2 and "weights do not fit [model] (d_model: 32 -> 48" in bad.stderr


def test_flag_errors_exit_2_with_one_line(tiny, capsys):
    from trainer.run import main  # config errors happen before anything process-wide is touched

    for flags, message in ((["--batch_size", "two"], "error: --batch_size: Input should be a valid integer"),
                           (["--halting_wieght", "1"], "error: unknown flag --halting_wieght (did you mean --halting_weight?)")):
        assert main([str(tiny.manifest), *flags]) == 2
        err = capsys.readouterr().err
        assert err.startswith(message) and err.count("\n") == 1


def test_dry_run_with_8bit_adamw_and_bf16(tiny):
    runs = tiny.base / "dry-runs"
    dry = tiny.run("--dry_run", "--optimizer", "adamw_8bit", "--mixed_precision", "bf16", runs=runs)
    assert "dry run: one batch (4, " in dry.stdout and "nothing written" in dry.stdout
    assert not (runs / "tiny").exists()


def test_torchrun_two_ranks_match_one_process(tiny):
    flags = ["--bucket_batches", "1", "--steps", "4", "--val_every", "2", "--checkpoint_every", "2",
             "--hrm_gate_warmup_steps", "2", "--gate_ramp_steps", "0"]
    single = tiny.base / "ddp-single"
    tiny.run(*flags, runs=single)
    runs = tiny.base / "ddp-runs"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           *tiny.command(*flags, runs=runs)[1:]]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=tiny.base, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    one, two = records(single / "tiny", "train"), records(runs / "tiny", "train")
    assert [r["step"] for r in two] == list(range(1, 5))  # rank 0 alone writes
    # same global batches, gradients equal up to summation order; once the gate opens Adam turns
    # that noise on near-zero gradients into ~1e-4 relative loss differences, hence the tolerance
    assert two[0]["loss"] == pytest.approx(one[0]["loss"], rel=1e-6)
    for a, b in zip(one, two):
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-3) and b["tokens"] == a["tokens"]
        for key in ("gate_mean", "gate_raw_mean", "gate_min", "gate_max", "lm_mem_loss"):  # over both ranks
            assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-7), key
        assert b["samples"] == a["samples"]
    for a, b in zip(records(single / "tiny", "val"), records(runs / "tiny", "val")):
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-3) and b["val_tokens"] == a["val_tokens"]
    assert sorted(p.name for p in (runs / "tiny" / "checkpoints").glob("*.pt")) == ["final.pt", "step_2.pt", "step_4.pt"]
    assert load(runs / "tiny" / "checkpoints" / "final.pt")["world_size"] == 2


def test_early_stop_counts_consecutive_increases_after_grace(tiny):
    runs = tiny.base / "patience-runs"
    # the learning rate warms up to 2.0 (Adam moves every weight by ~lr): the loss soon climbs
    flags = ["--learning_rate", "2.0", "--warmup_steps", "16", "--grad_clip", "0", "--lr_scheduler", "constant",
             "--val_every", "1", "--eval_loss_patience", "2", "--patience_grace_steps", "3", "--steps", "16",
             "--log_steps", "16", "--checkpoint_every", "100"]
    result = tiny.run(*flags, runs=runs)
    val = [(r["step"], r["val_loss"]) for r in records(runs / "tiny", "val")]
    expected, bad = None, 0  # replay the rule on the logged losses
    for (_, prev), (step, loss) in zip(val, val[1:]):
        bad = (bad + 1 if not loss <= prev else 0) if step > 3 else 0
        if bad == 2:
            expected = step
            break
    assert expected is not None and expected < 16, "this recipe is meant to overshoot and stop early"
    assert val[-1][0] == expected and f"early stop at step {expected}" in result.stdout
    final = load(runs / "tiny" / "checkpoints" / "final.pt")
    assert final["step"] == expected and final["stopped"] is True  # a rerun reports it and exits
    assert load(runs / "tiny" / "checkpoints" / f"step_{expected}.pt")["stopped"] is True
