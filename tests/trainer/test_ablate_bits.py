"""A scaled-down copy of specs/ablation_bits.toml, end to end through the GPU probe's CPU mode
(``bench/bits_probe.py --device cpu --tiny``), and the per-run thread count.

The copy keeps every arm of the real spec and its evaluation and shrinks the rest: one seed,
16 steps, a tiny model and tokenizer, 6 held-out strings. It checks that the bits suite is read
like any suite (exact match per question and per tier with intervals), that gate μ is reported per
question for the HRM arms only, that each HRM arm is scored again with its memory left out, that costs are there for every arm, that each training child ran
with the thread count the ablation gave it, and that the probe prints its one table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib

from corpus.synthetic.bits import QUESTIONS
from trainer.ablate.runs import child_env, threads_per_run

from .conftest import REPO, env


def test_scaled_down_bits_ablation_through_the_probe(tmp_path):
    work = tmp_path / "probe"
    cmd = [sys.executable, str(REPO / "bench" / "bits_probe.py"), "--device", "cpu", "--tiny", "--seeds", "0",
           "--jobs", "2", "--workdir", str(work)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=tmp_path, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    spec = tomllib.loads((REPO / "specs" / "ablation_bits.toml").read_text())
    arms = [a["name"] for a in spec["arms"]]
    rep = json.loads((work / "runs" / "report" / "ablation.json").read_text())
    assert rep["arms"] == arms and rep["base"] == "plain" == arms[0] and len(arms) >= 2 and rep["seeds"] == [0]

    # exact match per question (and per tier), on the same paired items for every arm
    for question in QUESTIONS:
        acc = rep["metrics"][f"bits/{question}/accuracy"]
        assert set(acc) == set(arms)
        est = acc["plain"]["estimate"]
        assert 0 <= est["mean"] <= 1 and est["items"] > 0 and acc["plain"]["vs_base"] is None
        assert all(acc[a]["vs_base"]["items"] == est["items"] for a in arms[1:])
        assert f"bits/{question}/tier2/accuracy" in rep["metrics"]
    assert 0.45 < rep["chance"]["bits"]["parity"] <= 0.55 and rep["chance"]["bits"]["count"] < 0.4

    # gate μ per question: every HRM arm has one in [0, 1] per question, the plain decoder none
    gates = rep["gate_by_group"]
    assert gates["plain"] == {}
    for arm in arms[1:]:
        assert set(gates[arm]["bits"]) == set(QUESTIONS) and all(0 <= g <= 1 for g in gates[arm]["bits"].values())
    text = (work / "runs" / "report" / "ablation.md").read_text()
    assert "Gate μ per question" in text and "| bits/parity/accuracy |" in text and "Chance (bits" in text

    # every HRM arm scored again with the memory left out; full = left out + carried, per question
    carried = rep["memory_left_out"]
    assert set(carried) == set(arms[1:])
    for arm in arms[1:]:
        for question in QUESTIONS:
            r = carried[arm][f"bits/{question}/accuracy"]
            full = rep["metrics"][f"bits/{question}/accuracy"][arm]["estimate"]
            assert r["left_out"]["items"] == full["items"]
            assert abs(r["left_out"]["mean"] + r["carried"]["mean"] - full["mean"]) < 1e-9
    assert "with the memory left out" in text

    # costs of every arm; the plain decoder has no HRM parameters and the fewest FLOPs
    costs = rep["costs"]
    assert costs["plain"]["hrm_params"] == 0 and costs["plain"]["steps"] == 16
    assert all(costs[a]["hrm_params"] > 0 and costs[a]["train_flops"] > costs["plain"]["train_flops"] for a in arms[1:])

    # each child ran with the thread count the ablation chose (--jobs 2, capped by the test's OMP_NUM_THREADS=1)
    for arm in arms:
        lines = (work / "runs" / f"{arm}-s0" / "metrics.jsonl").read_text().splitlines()
        start = next(e for e in map(json.loads, lines) if e.get("kind") == "event")
        assert start["threads"] == threads_per_run(2, environ=env()) == 1

    # the probe's one table: a header naming the questions with their chance, one row per arm
    out = result.stdout.splitlines()
    assert out[0].startswith("bits_probe: ") and "on cpu" in out[0]
    table = [line for line in out if line.startswith("| ")]
    assert table[0].startswith("| arm | count (chance ") and "gate μ per question" in table[0]
    assert [row.split(" | ")[0][2:] for row in table[1:]] == arms


def test_threads_per_run_divides_the_cores_and_keeps_a_callers_cap():
    assert threads_per_run(2, cores=2, environ={}) == 1
    assert threads_per_run(1, cores=2, environ={}) == 2
    assert threads_per_run(3, cores=8, environ={}) == 2
    assert threads_per_run(4, cores=2, environ={}) == 1
    assert threads_per_run(1, cores=8, environ={"OMP_NUM_THREADS": "3"}) == 3
    assert threads_per_run(4, cores=8, environ={"OMP_NUM_THREADS": "3"}) == 2
    assert threads_per_run(1, cores=4, environ={"OMP_NUM_THREADS": "many"}) == 4


def test_child_env_sets_the_threads_torch_starts_with():
    # this process runs with OMP_NUM_THREADS=1; the child is given 2 and torch must see 2
    child = child_env(2)
    child["PYTHONPATH"] = str(REPO) + os.pathsep + child.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
                         capture_output=True, text=True, env=child, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "2"
    assert all(child[name] == "2" for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"))


def test_a_run_counts_as_started_once_its_start_event_is_complete(tmp_path):
    """train_all lets runs of the same [data] start side by side once one of them has logged its
    start event (its tokenizer, sources and plan exist), not only once it has finished."""
    from pathlib import Path

    from trainer.ablate.runs import RunJob

    job = RunJob("a", 0, "a-s0", Path("m.toml"), "sha", tmp_path / "a-s0", tmp_path / "a.log", "data")
    assert not job.started()
    job.run_dir.mkdir()
    metrics = job.run_dir / "metrics.jsonl"
    metrics.write_text('{"kind":"event","step":0,"plan_id":"p1"')  # being written: no newline yet
    assert not job.started()
    metrics.write_text('{"kind":"event","step":0,"plan_id":"p1"}\n')
    assert job.started()
    metrics.write_text('{"kind":"train","step":10}\n')
    assert not job.started()
