"""Manifest validation: every mistake is one line naming the file and the key; shipped manifests
carry the blueprint's numbers."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from corpus.errors import UserError
from corpus.mixing.manifest import load_manifest
from tests.mixing.helpers import REPO, write_manifest

DATA = {"tokenizer": "tokenizers/t.json", "max_seq_len": 128, "train_samples": 1000, "val_samples": 10}
TWO = [{"name": "synthetic:arith", "weight": 0.6}, {"name": "synthetic:lists", "weight": 0.4}]


def error_of(path: Path) -> str:
    with pytest.raises(UserError) as info:
        load_manifest(path)
    text = str(info.value)
    assert "\n" not in text, text
    assert text.startswith(f"{path}: "), text
    return text


def test_valid_manifest_and_tier_forms(tmp_path):
    sources = [
        {"name": "synthetic:arith", "weight": 0.5, "tiers": [0.4, 0.3, 0.2, 0.1]},
        {"name": "synthetic:lists", "weight": 0.3, "tiers": {"0": 0.5, "3": 0.5}, "max_epochs": 3},
        {"name": "synthetic:counting", "weight": 0.2,
         "tiers": {"schedule": [{"at": 0.0, "weights": [1, 0, 0, 0]}, {"at": 0.4, "weights": [0.6, 0, 0, 0.4]}]}},
    ]
    m = load_manifest(write_manifest(tmp_path / "ok.toml", DATA, sources, extra="[train]\nlr = 1\n"))
    a, b, c = m.data.sources
    assert a.tiers[0].weights == {0: 0.4, 1: 0.3, 2: 0.2, 3: 0.1} and not a.tier_schedule
    assert b.tiers[0].weights == {0: 0.5, 3: 0.5} and b.max_epochs == 3
    assert [k.at for k in c.tiers] == [0.0, 0.4] and c.tiers[1].weights == {0: 0.6, 3: 0.4} and c.tier_schedule
    assert m.data.window == 1000 and m.data.seed == 0 and m.model.train == {"lr": 1}  # [train] is the trainer's
    assert m.name == "ok" and len(m.sha256) == 64


@pytest.mark.parametrize("case, expect", [
    ("top", "bogus: unknown key"),
    ("data", "data.tokenzier: unknown key"),
    ("source", "data.sources[1] (synthetic:lists).wieght: unknown key"),
    ("sum", "data.sources: weights sum to 0.9, not 1 (tolerance 1e-06)"),
    ("tiers", "data.sources[0] (synthetic:arith).tiers: tier weights sum to 0.9, not 1"),
    ("schedule", "data.sources[0] (synthetic:arith).tiers: schedule 'at' values must increase strictly"),
    ("dup", "data.sources: source 'synthetic:arith' appears twice"),
    ("missing", "data.train_samples: missing"),
    ("negative", "data.sources[0] (synthetic:arith).weight: Input should be greater than 0"),
])
def test_errors_name_file_and_key(tmp_path, case, expect):
    data = dict(DATA)
    sources = [dict(s) for s in TWO]
    extra = ""
    if case == "top":
        extra = "[bogus]\nx = 1\n"
    elif case == "data":
        data["tokenzier"] = "x"
    elif case == "source":
        sources[1]["wieght"] = 0.4
    elif case == "sum":
        sources[1]["weight"] = 0.3
    elif case == "tiers":
        sources[0]["tiers"] = [0.5, 0.4]
    elif case == "schedule":
        sources[0]["tiers"] = {"schedule": [{"at": 0.5, "weights": [1]}, {"at": 0.2, "weights": [1]}]}
    elif case == "dup":
        sources[1]["name"] = "synthetic:arith"
    elif case == "missing":
        del data["train_samples"]
    elif case == "negative":
        sources[0]["weight"] = -0.6
    message = error_of(write_manifest(tmp_path / f"{case}.toml", data, sources, extra=extra))
    assert expect in message, message


def test_weights_within_tolerance_pass(tmp_path):
    sources = [{"name": "synthetic:arith", "weight": 1 / 3}, {"name": "synthetic:lists", "weight": 1 / 3},
               {"name": "synthetic:counting", "weight": 0.3333334}]
    assert len(load_manifest(write_manifest(tmp_path / "third.toml", DATA, sources)).data.sources) == 3
    sources[2]["weight"] = 0.33334
    assert "weights sum to" in error_of(write_manifest(tmp_path / "off.toml", DATA, sources))


def test_not_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[run\nname = 1\n")
    assert "not valid TOML" in error_of(bad)
    with pytest.raises(UserError, match="manifest not found"):
        load_manifest(tmp_path / "nope.toml")


# -- the shipped manifests -----------------------------------------------------------------------

def shipped(name: str):
    return load_manifest(REPO / "manifests" / f"{name}.toml")


def weights(m) -> dict[str, float]:
    return {s.name: s.weight for s in m.data.sources}


def test_shipped_manifests_validate_and_carry_blueprint_numbers():
    a, b, bq, c, demo = (shipped(n) for n in ("stageA", "stageB", "stageB_scienceqa", "stageC", "demo"))
    assert weights(a) == {"wiki": 1.0}
    assert a.raw["train"]["steps"] == 308212 and a.raw["train"]["batch_size"] == 22
    assert a.raw["train"]["hrm_gate_warmup_steps"] == 8000 and a.raw["eval"]["patience_grace_steps"] == 10000
    assert weights(b) == {"wiki": 0.90, "gsm8k": 0.05, "mbpp": 0.05}
    assert (b.data.train_samples, b.data.val_samples) == (5_000_000, 20_000)
    assert b.raw["model"] == {"deep_supervision": True, "ds_weight": 0.1, "use_halting": True, "halting_weight": 0.005}
    assert weights(bq) == {"wiki": 0.90, "gsm8k": 0.05, "mbpp": 0.03, "science_qa": 0.02}
    w = weights(c)
    language = w["wiki"]
    reasoning = w["gsm8k"] + w["science_qa"] + w["mbpp"]
    builders = sum(v for k, v in w.items() if k.startswith("synthetic:"))
    assert 0.60 <= language <= 0.70 and 0.15 <= reasoning <= 0.20 and 0.10 <= builders <= 0.15
    assert math.isclose(language + reasoning + builders, 1.0)
    assert c.raw["train"]["steps"] == 400000 and c.raw["model"]["halting_weight"] == 0.01
    assert any(s.tier_schedule for s in c.data.sources)
    assert all(s.name.startswith("synthetic:") for s in demo.data.sources) and demo.data.tokenizer_train
    blueprint_flags = {"batch_size", "steps", "learning_rate", "warmup_steps", "lr_scheduler", "lr_min_ratio",
                       "grad_clip", "val_every", "run_name", "checkpoint_limit", "mixed_precision",
                       "eval_batch_size", "log_steps", "dataset_workers", "save_best_model", "optimizer",
                       "max_seq_len", "max_val_samples", "eval_loss_patience", "patience_grace_steps",
                       "hrm_gate_warmup_steps"}
    for m in (a, b, bq, c):
        keys = set(m.raw["train"]) | set(m.raw["eval"]) | set(m.raw["model"])
        assert blueprint_flags <= keys, (m.path, blueprint_flags - keys)
    for m in (b, bq, c):
        assert {"deep_supervision", "ds_weight", "use_halting", "halting_weight"} <= set(m.raw["model"])
