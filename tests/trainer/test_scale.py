"""``--scale smoke``, ``--data.KEY`` / ``--from`` overrides, the dataset_workers cap and the final
validation (progress, max_val_samples, the checkpoint taken before it), on real runs.

The scaled stage run is the real ``manifests/stageA.toml`` on WikiText-2 valid with a small
tokenizer; the rest use the tiny plan of tests/trainer/conftest.py.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, shared
from trainer.checkpoint import load
from trainer.hardware import cpu_has_native_bf16
from trainer.metrics import read_metrics

from .conftest import env

SMOKE_PRECISION = "bf16" if cpu_has_native_bf16() else "none"  # what --scale smoke trains in on this CPU

pytestmark = pytest.mark.slow  # real trainer subprocesses


def records(run_dir, kind):
    return [r for r in read_metrics(run_dir / "metrics.jsonl") if r["kind"] == kind]


def cli(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=env(), cwd=cwd,
                          timeout=timeout)


# -- a real stage manifest, scaled ----------------------------------------------------------------

@pytest.fixture(scope="module")
def stage_a(tmp_path_factory):
    wiki = shared("wikitext2", "valid.txt")
    base = tmp_path_factory.mktemp("stageA")
    root, runs = base / "data", base / "runs"
    tok = cli("corpus.tokenizer", "train", "--from", str(wiki), "--vocab-size", "1024", "--out",
              str(root / "tokenizers" / "hrm.json"), "--data-dir", str(root), cwd=base)
    assert tok.returncode == 0, tok.stderr
    run = cli("trainer.run", str(REPO / "manifests" / "stageA.toml"), "--scale", "smoke", "--steps", "8",
              "--data_dir", str(root), "--runs_dir", str(runs), "--from", f"wiki={wiki}", cwd=base)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root, runs / "hrm-gated-pretrain-smoke", run.stdout


def test_scaled_stage_a_keeps_its_shape_and_says_what_it_scaled(stage_a):
    root, run_dir, out = stage_a
    # f = 8 / 308,212: every step count scaled by f (at least 1), validations every 8 // 4 steps
    for line in ("--scale smoke: a stage of 308,212 steps run as 8", "train.warmup_steps           4,000 -> 1",
                 "train.hrm_gate_warmup_steps  8,000 -> 1", "eval.patience_grace_steps    10,000 -> 1",
                 "eval.val_every               1,500 -> 2", "data.train_samples           6,780,664 -> 64",
                 "data.val_samples             20,000 -> 64", "train.dataset_workers        30 -> 1",
                 "train.run_name               hrm-gated-pretrain -> hrm-gated-pretrain-smoke",
                 "max_epochs                   wiki 4 -> not enforced"):
        assert line in out
    # the recipe's optimizer stays; its bf16 stays where the CPU has native bf16 (emulated it is ~10x slower)
    assert f"optimizer adamw_8bit  precision {SMOKE_PRECISION}" in out
    train, val = records(run_dir, "train"), records(run_dir, "val")
    assert [r["step"] for r in train] == list(range(1, 9)) and [r["step"] for r in val] == [2, 4, 6, 8]
    assert [r["gate_scale"] for r in train] == [0.0] + [1.0] * 7  # gate shut for the scaled 1 step, no ramp
    assert train[0]["lr"] == pytest.approx(0.00025)  # warmup of 1 step: the peak at once (cosine afterwards)
    assert all(r["val_tokens"] == 64 * 127 for r in val)  # 64 windows cut to the run's 128 tokens
    assert all(r["halt_sum_mean"] == 0 and r["ds_loss"] == 0 for r in train)  # stage A: auxiliaries off
    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"]["preset"] == "demo" and config["train"]["optimizer"] == "adamw_8bit"
    assert config["data_overrides"]["data"] == {"train_samples": 64, "val_samples": 64}
    assert config["data_overrides"]["from"] == {"wiki": [str(shared("wikitext2", "valid.txt"))]}
    final = load(run_dir / "checkpoints" / "final.pt")
    plan = json.loads(next((root / "mixes" / "stageA").glob(f"{final['plan_id']}/plan.json")).read_text())
    assert plan["payload"]["train_samples"] == 64 and plan["payload"]["val_samples"] == 64
    assert (run_dir / "best-model" / "model.pt").is_file() and (run_dir / "plots" / "val_loss.png").is_file()


def test_scale_leaves_explicit_flags_and_chains_init_from(tmp_path):
    from trainer.config import load_config, parse_command_line

    cfg = load_config(parse_command_line([str(REPO / "manifests" / "stageC.toml"), "--scale", "smoke",
                                          "--val_every", "7", "--batch_size", "4"]))
    assert cfg.eval.val_every == 7 and cfg.train.batch_size == 4 and cfg.train.steps == 40
    assert cfg.train.init_from == "hrm-stageB-smoke" and cfg.run_name == "hrm-stageC-smoke"
    assert cfg.train.warmup_steps == 1 and cfg.train.hrm_gate_warmup_steps == 0  # 0 stays 0
    assert cfg.train.gate_ramp_steps == 1 and cfg.train.mixed_precision == SMOKE_PRECISION
    assert cfg.manifest["data"]["train_samples"] == 40 * 4
    arith = next(s for s in cfg.manifest["data"]["sources"] if s["name"] == "synthetic:arith")
    assert arith["build"]["count"] == 500 and "max_epochs" not in arith and len(arith["tiers"]["schedule"]) == 3
    pinned = load_config(parse_command_line([str(REPO / "manifests" / "stageC.toml"), "--scale", "smoke",
                                             "--mixed_precision", "bf16"]))
    assert pinned.train.mixed_precision == "bf16"  # an explicit precision wins over the scale's CPU choice
    on_gpu = load_config(parse_command_line([str(REPO / "manifests" / "stageC.toml"), "--scale", "smoke",
                                             "--device", "cuda"]))
    assert on_gpu.train.mixed_precision == "bf16"  # the fp32 fallback is for CPU runs only
    plain = load_config(parse_command_line([str(REPO / "manifests" / "stageC.toml")]))
    assert plain.manifest_sha != cfg.manifest_sha and plain.run_name == "hrm-stageC"


# -- [data] overrides and local inputs ----------------------------------------------------------------

def test_data_overrides_give_the_plan_they_name(tiny):
    def plan_of(*flags):
        done = cli("corpus.mix", str(tiny.manifest), "--data-dir", str(tiny.root), "--json", *flags, cwd=tiny.base)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    base = plan_of()
    seeded, longer = plan_of("--data.seed", "7"), plan_of("--data.train_samples", "300", "--data.val_samples", "12")
    assert len({base["plan"], seeded["plan"], longer["plan"]}) == 3
    assert (longer["train_samples"], longer["val_samples"]) == (300, 12) and base["train_samples"] == 600
    assert plan_of("--data.seed", "7")["plan"] == seeded["plan"]  # deterministic
    # the trainer plans the same plan for the same overrides
    dry = tiny.run("--data.seed", "7", "--dry_run", runs=tiny.base / "override-runs")
    assert f"plan {seeded['plan']}" in dry.stdout


def test_override_flags_are_one_line_errors(tiny, capsys):
    from trainer.run import main

    for flags, message in ((["--data.bogus", "1"], "error: --data.bogus: not a [data] key"),
                           (["--data.seed", "x"], "error: --data.seed: needs an integer (got 'x')"),
                           (["--from", "gsm8k"], "error: --from gsm8k: give SOURCE=PATH"),
                           (["--from", "gsm8k=x.jsonl"], "no source 'gsm8k' in the manifest"),
                           (["--scale", "huge"], "error: --scale huge: unknown scale (known: smoke)")):
        assert main([str(tiny.manifest), "--data_dir", str(tiny.root), *flags]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err


def test_from_points_a_source_at_local_files(tmp_path):
    from corpus.mixing.overrides import DataOverrides, load_overridden

    data = DataOverrides()
    data.add_input(f"gsm8k={tmp_path / 'a.jsonl'},{tmp_path / 'b.jsonl'}")
    data.add_input(f"wiki={tmp_path / 'w.txt'}")
    m = load_overridden(REPO / "manifests" / "stageB.toml", data)
    by_name = {s.name: s for s in m.data.sources}
    assert by_name["gsm8k"].build == {"split": "train", "limit": 8000,
                                      "from": [str(tmp_path / "a.jsonl"), str(tmp_path / "b.jsonl")]}
    assert by_name["wiki"].build == {"from": [str(tmp_path / "w.txt")]}  # had no build table


def test_steps_alone_keeps_the_plan_and_says_how_to_shrink_it():
    from trainer.config import load_config, parse_command_line

    cfg = load_config(parse_command_line([str(REPO / "manifests" / "stageB.toml"), "--steps", "8"]))
    assert cfg.manifest["data"]["train_samples"] == 5_000_000 and not cfg.data
    assert cfg.notes == ["--steps 8: the run reads 176 of the plan's 5,000,000 train positions "
                         "(--data.train_samples 176 plans only those, --scale smoke scales the whole recipe)"]


# -- dataset_workers, final validation ------------------------------------------------------------------

def test_dataset_workers_are_capped_to_the_cores(monkeypatch):
    from trainer import data

    monkeypatch.setattr(data, "available_cores", lambda: 2)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert data.cap_workers(30) == (2, ["dataset_workers 30 > 2 available cores: using 2"])
    assert data.cap_workers(2) == (2, []) and data.cap_workers(0) == (0, [])
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert data.cap_workers(30) == (1, ["dataset_workers 30 > 1 available cores per local rank (2 ranks): using 1"])


@pytest.fixture(scope="module")
def final_run(tiny):
    runs = tiny.base / "final-val-runs"
    result = tiny.run("--steps", "4", "--val_every", "100", "--max_val_samples", "8", "--eval_batch_size", "4",
                      "--dataset_workers", "512", runs=runs)
    return runs / "tiny", result


def test_final_validation_obeys_max_val_samples_and_shows_progress(tiny, final_run):
    run_dir, result = final_run
    from corpus.mixing import open_plan
    from trainer.data import read_rows

    cores = len(__import__("os").sched_getaffinity(0))
    assert f"dataset_workers 512 > {cores} available cores: using {cores}" in result.stdout
    assert "final validation at step 4 (8 samples): 2/2" in result.stdout  # 8 samples, batches of 4
    val = records(run_dir, "val")
    assert [r["step"] for r in val] == [4]  # val_every 100: only the last step validates
    plan = open_plan(tiny.root, load(run_dir / "checkpoints" / "final.pt")["plan_id"])
    rows = read_rows(plan, "val", list(range(8)))  # independently: the first 8 val positions' labels
    assert val[0]["val_tokens"] == sum(min(len(r.tokens), 192) - 1 for r in rows)


def test_the_last_step_is_saved_before_the_final_validation(tiny, final_run):
    run_dir, _ = final_run
    before, final = load(run_dir / "checkpoints" / "step_4.pt"), load(run_dir / "checkpoints" / "final.pt")
    assert before["validation_pending"] is True and final["validation_pending"] is False
    assert before["patience"]["last"] is None and final["patience"]["last"] is not None
    # interrupted during the final validation: step_4.pt is on disk, final.pt and the val record are not
    runs = tiny.base / "interrupted-runs"
    shutil.copytree(run_dir, runs / "tiny")
    for name in ("final.pt", "final.pt.meta.json"):
        (runs / "tiny" / "checkpoints" / name).unlink()
    lines = (runs / "tiny" / "metrics.jsonl").read_text().splitlines(keepends=True)
    (runs / "tiny" / "metrics.jsonl").write_text("".join(ln for ln in lines if '"kind": "val"' not in ln
                                                         and '"kind":"val"' not in ln))
    again = tiny.run("--steps", "4", "--val_every", "100", "--max_val_samples", "8", "--eval_batch_size", "4",
                     "--dataset_workers", "512", runs=runs)
    assert "step 4 is the last: running its final validation again" in again.stdout
    assert records(runs / "tiny", "val") == records(run_dir, "val")  # the same loss as uninterrupted
    assert [r["step"] for r in records(runs / "tiny", "train")] == [1, 2, 3, 4]  # no step trained twice
    redone = load(runs / "tiny" / "checkpoints" / "final.pt")
    assert redone["validation_pending"] is False and redone["step"] == 4


def test_the_chain_gives_each_stage_the_local_inputs_of_its_own_sources(tmp_path):
    from trainer.chain import _parser, stage_command

    args = _parser().parse_args(["--shared", str(tmp_path)])
    a = stage_command("stageA", tmp_path, tmp_path / "data", tmp_path / "runs", args)
    c = stage_command("stageC", tmp_path, tmp_path / "data", tmp_path / "runs", args)
    inputs = lambda cmd: [cmd[i + 1] for i, x in enumerate(cmd) if x == "--from"]  # noqa: E731
    assert inputs(a) == [f"wiki={tmp_path / 'wikitext2/valid.txt'}"]
    assert inputs(c) == [f"{n}={tmp_path / p}" for n, p in (("wiki", "wikitext2/valid.txt"),
                         ("gsm8k", "gsm8k/train_sample.jsonl"), ("science_qa", "scienceqa"), ("mbpp", "mbpp/mbpp.jsonl"))]
    assert c[c.index("--scale") + 1] == "smoke" and c[c.index("--runs_dir") + 1] == str(tmp_path / "runs")
    assert c[c.index("--dev_suites") + 1] == "arith,halting,gsm8k" and "--steps" not in c
