"""``python -m trainer.ablate``: a scaled-down copy of specs/ablation_hrm.toml, end to end.

Two arms, one seed, 24 steps on the tiny data root: the base arm and an arm identical to it by
construction (``ds_weight`` does nothing while deep supervision is off). It checks the table, the
intervals (the identical arm's difference is exactly 0 and its interval covers 0), the per-tier
rows, costs, the plot, and that a rerun reuses every run and evaluation. Parameter and FLOP
counting is checked on its own against torch's FlopCounterMode.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from corpus.errors import UserError
from trainer.ablate.spec import arm_manifest, load_spec
from trainer.ablate.stats import difference, estimate, t975
from trainer.ablate.toml_text import dumps

from .conftest import REPO, env

SPEC = """
[ablation]
name = "tiny"
manifest = "{manifest}"
runs_dir = "{runs}"
seeds = [0]

[common]
train = {{ steps = 24, max_seq_len = 96 }}
eval = {{ val_every = 12, dev_suites = ["arith"], dev_limit = 2 }}

[evaluation]
suites = ["arith"]
limit = 8
max_new_tokens = 24
batch_size = 16

[[arms]]
name = "hrm"

[[arms]]
name = "same"
description = "identical to hrm by construction"
model = {{ ds_weight = 0.5 }}
"""


def _ablate(spec: Path, root: Path, *flags: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "trainer.ablate", str(spec), "--data_dir", str(root), *flags]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env(), cwd=spec.parent, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_scaled_down_ablation(tiny):
    spec = tiny.base / "ablate-tiny.toml"
    runs = tiny.base / "ablate-runs"
    spec.write_text(SPEC.format(manifest=tiny.manifest, runs=runs))
    first = _ablate(spec, tiny.root)
    out = runs / "report"
    rep = json.loads((out / "ablation.json").read_text())
    assert rep["arms"] == ["hrm", "same"] and rep["seeds"] == [0]

    # every run is a normal trainer run of the same length
    for arm in rep["arms"]:
        assert (runs / f"{arm}-s0" / "checkpoints" / "final.pt").is_file()
        assert rep["costs"][arm]["steps"] == 24
    assert rep["costs"]["hrm"]["tokens"] == rep["costs"]["same"]["tokens"] > 0

    acc = rep["metrics"]["arith/accuracy"]
    base = acc["hrm"]["estimate"]
    assert base["items"] == 16 and base["seeds"] == 1 and base["lo"] <= base["mean"] <= base["hi"]
    assert acc["hrm"]["vs_base"] is None
    same = acc["same"]["vs_base"]
    assert same["mean"] == 0.0 and same["lo"] <= 0.0 <= same["hi"]
    for metric in ("final_val_loss", "final_train_loss"):
        d = rep["metrics"][metric]["same"]["vs_base"]
        assert d["mean"] == 0.0 and d["lo"] <= 0.0 <= d["hi"]
    assert rep["metrics"]["final_val_loss"]["hrm"]["estimate"]["mean"] > 0
    assert 0 < rep["costs"]["hrm"]["hrm_params"] < rep["costs"]["hrm"]["params"]
    assert rep["costs"]["same"]["train_flops"] == rep["costs"]["hrm"]["train_flops"] > 0

    # per tier: the tiny sources are tiers 0-1 of arith and counting; limit 8 = 4 items per tier and task
    tiers = sorted(m for m in rep["metrics"] if "/tier" in m and m.startswith("arith/"))
    assert tiers == ["arith/arith/tier0/accuracy", "arith/arith/tier1/accuracy",
                     "arith/counting/tier0/accuracy", "arith/counting/tier1/accuracy"]
    # teacher-forced scores of the same items: continuous, so the arms' estimates differ
    nll = rep["metrics"]["teacher/target_nll"]
    assert nll["hrm"]["estimate"]["items"] == 16 and 0 < nll["hrm"]["estimate"]["mean"] < 10
    assert nll["hrm"]["estimate"]["lo"] < nll["hrm"]["estimate"]["mean"] < nll["hrm"]["estimate"]["hi"]
    assert nll["same"]["vs_base"]["mean"] == 0.0 and nll["same"]["vs_base"]["lo"] <= 0.0 <= nll["same"]["vs_base"]["hi"]
    assert "teacher/counting/tier1/token_accuracy" in rep["metrics"]
    # both HRM arms rescored with the memory left out, generation and teacher forcing alike
    for arm in ("hrm", "same"):
        for metric in ("arith/accuracy", "teacher/target_nll", "teacher/token_accuracy"):
            r = rep["memory_left_out"][arm][metric]
            full = rep["metrics"][metric][arm]["estimate"]
            assert r["left_out"]["items"] == full["items"] == 16
            assert abs(r["left_out"]["mean"] + r["carried"]["mean"] - full["mean"]) < 1e-9
    text = (out / "ablation.md").read_text()
    assert "| arith/accuracy |" in text and "| arith/counting/tier1/accuracy | 4 |" in text and "| same |" in text
    assert "(1 seed: no interval)" in text
    assert "with the memory left out" in text and "| arm | arith/accuracy | teacher/target_nll |" in text
    assert text in first.stdout
    png = (out / "ablation.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000

    # the curves are the runs' own metrics
    curves = rep["curves"]["hrm-s0"]
    assert [r["step"] for r in curves["val"]] == [12, 24] and len(curves["dev"]) == 2

    # a rerun trains nothing and evaluates nothing
    again = _ablate(spec, tiny.root)
    assert again.stdout.count("finished earlier, reused") == 2 and "evaluated" not in again.stdout
    assert json.loads((out / "ablation.json").read_text())["metrics"] == rep["metrics"]


def test_parameter_and_flop_counts_against_torch_flop_counter():
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from trainer.ablate.cost import parameter_counts, step_flops, training_flops
    from trainer.model import HRMMamba2LM, ModelConfig

    small = dict(d_model=32, n_layers=2, d_state=8, headdim=16, chunk_size=16, d_hrm=16, hrm_slots=2, hrm_heads=2)
    torch.manual_seed(0)
    plain = HRMMamba2LM(ModelConfig(vocab_size=64, hrm_enabled=False, **small))
    hrm = HRMMamba2LM(ModelConfig(vocab_size=64, **small))
    p_plain, p_hrm = parameter_counts(plain), parameter_counts(hrm)
    assert p_plain == {"params": sum(p.numel() for p in plain.parameters()), "hrm_params": 0}
    assert p_hrm["params"] - p_hrm["hrm_params"] == p_plain["params"]

    # the plain decoder has no no-grad branch, so torch's own counter can run on it: same total
    ids = torch.randint(3, 64, (4, 24), generator=torch.Generator().manual_seed(0))
    reference = FlopCounterMode(display=False)
    with reference:
        plain(ids, torch.full((4,), 6), ids.clone(), gate_scale=1.0).loss.backward()
    plain.zero_grad(set_to_none=True)
    assert step_flops(plain, 4, 24, 1.0) == reference.get_total_flops() > 0
    shut, opened = step_flops(hrm, 4, 24, 0.0), step_flops(hrm, 4, 24, 1.0)
    assert reference.get_total_flops() < shut < opened
    total = training_flops(hrm, 4, 24.0, steps=10, warmup_steps=3)
    assert total["train_flops"] == 3 * shut + 7 * opened and total["flops_per_step"] == opened


def test_interval_arithmetic_against_a_direct_computation():
    rng = np.random.default_rng(0)
    x = (rng.random((3, 50)) < 0.4).astype(float)
    e = estimate(x)
    per_seed, per_item = x.mean(axis=1), x.mean(axis=0)
    seed_term = 4.303 * per_seed.std(ddof=1) / np.sqrt(3)
    item_term = 1.959964 * per_item.std(ddof=1) / np.sqrt(50)
    assert e.mean == pytest.approx(x.mean())
    assert e.hi - e.mean == pytest.approx(np.hypot(seed_term, item_term))
    assert e.mean - e.lo == pytest.approx(np.hypot(seed_term, item_term))
    assert difference(x, x).as_dict() == {"mean": 0.0, "lo": 0.0, "hi": 0.0, "seeds": 3, "items": 50,
                                          "seed_term": 0.0, "item_term": 0.0}
    with pytest.raises(ValueError, match="unpaired"):
        difference(x, x[:, :10])


def test_same_distribution_arms_cover_zero_and_a_real_gap_does_not():
    """Coverage: two arms drawn from one distribution; the interval covers 0 in ~95% of trials."""
    rng = np.random.default_rng(1)
    covered = 0
    for _ in range(400):
        p_item = rng.random(60)  # item difficulty, shared (the same items for both arms)
        a = (rng.random((3, 60)) < p_item).astype(float)
        b = (rng.random((3, 60)) < p_item).astype(float)
        covered += difference(a, b).covers(0.0)
    assert covered / 400 >= 0.93
    p = rng.random(200) * 0.5
    better = (rng.random((3, 200)) < p + 0.3).astype(float)
    worse = (rng.random((3, 200)) < p).astype(float)
    assert difference(better, worse).lo > 0.15


def test_t_quantiles():
    scipy_stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 5, 10, 30):
        assert t975(df) == pytest.approx(scipy_stats.t.ppf(0.975, df), abs=1e-3)


def test_arm_manifests_merge_and_refuse(tmp_path):
    base = REPO / "manifests" / "ablation_arith.toml"
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(f'[ablation]\nname = "x"\nmanifest = "{base}"\nseeds = [0]\n'
                         '[[arms]]\nname = "a"\n[[arms]]\nname = "b"\nmodel = { hrm_enabled = false }\n'
                         'data = { sources = { "synthetic:arith" = { tiers = [0.5, 0.5] } } }\n')
    spec = load_spec(spec_path)
    doc = tomllib.loads(base.read_text())
    b = arm_manifest(spec, spec.arm("b"), doc)
    assert b["model"] == {"preset": "demo", "hrm_enabled": False}
    assert b["data"]["sources"][0]["tiers"] == [0.5, 0.5] and b["data"]["sources"][0]["weight"] == 1.0
    assert {k: v for k, v in b["data"].items() if k != "sources"} == {k: v for k, v in doc["data"].items() if k != "sources"}
    assert tomllib.loads(dumps(b)) == b and dumps(b) == dumps(arm_manifest(spec, spec.arm("b"), doc))

    def refused(arms: str, match: str):
        spec_path.write_text(f'[ablation]\nname = "x"\nmanifest = "{base}"\nseeds = [0]\n[[arms]]\nname = "a"\n' + arms)
        with pytest.raises(UserError, match=match):
            s = load_spec(spec_path)
            arm_manifest(s, s.arms[1], doc)

    refused('[[arms]]\nname = "b"\ntrain = { steps = 9 }\n', r"arms\[b\]\.train\.steps: the training budget")
    refused('[[arms]]\nname = "b"\ntrain = { seed = 9 }\n', r"train\.seed: set by the ablation")
    refused('[[arms]]\nname = "b"\ndata = { sources = { "synthetic:nope" = { weight = 1 } } }\n',
            r"no source 'synthetic:nope'")
    refused('[[arms]]\nname = "a"\n', "used twice")
    refused('[[arms]]\nname = "b c"\n', "arm name")
    refused('[[arms]]\nname = "b"\nmodle = {}\n', r"arms\[1\] \(b\)\.modle: unknown key")


def test_report_over_three_seeds_pairs_items_and_seeds(tmp_path):
    """build_report on hand-made evaluations: arm b answers every item on seeds 1-2 and equals a on
    seed 0, so its gain is large on average but, with three seeds, not certain; on every seed it
    would be."""
    from trainer.ablate.report import build_report, markdown, plot

    base = REPO / "manifests" / "ablation_arith.toml"
    spec_path = tmp_path / "s.toml"
    spec_path.write_text(f'[ablation]\nname = "x"\nmanifest = "{base}"\nseeds = [0, 1, 2]\n'
                         '[[arms]]\nname = "a"\n[[arms]]\nname = "b"\n')
    spec = load_spec(spec_path)
    rng = np.random.default_rng(3)
    a = (rng.random((3, 40)) < 0.3).astype(float)
    b = a.copy()
    b[1:] = 1.0
    evals = {}
    for arm, x in (("a", a), ("b", b)):
        for s in range(3):
            items = [{"id": f"i{j}", "group": "arith", "tier": j % 2, "values": {"accuracy": x[s, j]}} for j in range(40)]
            curves = {"train": [{"step": 10, "loss": 2.0 - s, "gate_mean": 0.1, "halt_sum_mean": 0.0}],
                      "val": [{"step": 10, "val_loss": 1.5}], "dev": [{"step": 10, "dev/arith/accuracy": 0.1}]}
            evals[(arm, s)] = {"step": 10, "suites": {"arith": {"metrics": {}, "items": items}},
                               "training": {"tokens": 100, "samples": 10, "final_val_loss": 1.0 + 0.1 * s + (arm == "b"),
                                            "final_train_loss": 1.0, "elapsed_s": 5.0, "curves": curves},
                               "cost": {"params": 10, "hrm_params": 2, "flops_per_step": 7, "train_flops": 70.0}}
    rep = build_report(spec, evals, ["a note"], "python -m trainer.ablate s.toml")
    acc = rep["metrics"]["arith/accuracy"]
    assert acc["a"]["estimate"]["mean"] == pytest.approx(a.mean()) and acc["a"]["estimate"]["seeds"] == 3
    assert acc["b"]["vs_base"] == difference(b, a).as_dict() and acc["b"]["vs_base"]["lo"] < 0 < acc["b"]["vs_base"]["mean"]
    assert difference(np.ones_like(a), a).lo > 0
    tier1 = rep["metrics"]["arith/arith/tier1/accuracy"]["b"]["vs_base"]
    assert tier1 == difference(b[:, 1::2], a[:, 1::2]).as_dict()
    val = rep["metrics"]["final_val_loss"]["b"]["vs_base"]  # exactly +1 on every seed: a zero-width interval
    assert val["mean"] == pytest.approx(1.0) and val["hi"] - val["lo"] == pytest.approx(0.0, abs=1e-12)
    assert val["items"] == 0 and rep["metrics"]["final_val_loss"]["a"]["estimate"]["seed_term"] > 0
    text = markdown(rep)
    assert "| arith/arith/tier1/accuracy | 20 |" in text and "▲" in text and "* a note" in text  # ▲: the val loss
    assert plot(rep, tmp_path / "p.png").stat().st_size > 10_000
