"""Checkpoint files: rotation, corrupt/incomplete fallback, best-model swap, RNG round trip."""

from __future__ import annotations

import json
import random

import numpy as np
import torch

from trainer.checkpoint import Checkpoints, load, rng_state, set_rng_state, verify


def state(step):
    return {"step": step, "model": {"w": torch.full((3,), float(step))}, "plan_id": "p1"}


def test_rotation_keeps_the_newest_and_final(tmp_path):
    ck = Checkpoints(tmp_path, limit=2)
    for step in (10, 20, 30, 40):
        ck.save(state(step))
    ck.save(state(45), final=True)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["final.pt", "final.pt.meta.json", "step_30.pt", "step_30.pt.meta.json",
                     "step_40.pt", "step_40.pt.meta.json"]
    assert [s for s, _ in ck.candidates()] == [45, 40, 30]
    loaded, path = ck.load_latest()
    assert path.name == "final.pt" and loaded["step"] == 45
    ck.save(state(50))  # continuing after a final: the newer step file wins
    assert ck.load_latest()[0]["step"] == 50
    assert not list(tmp_path.glob("checkpoints/.*tmp*"))


def test_corrupt_newest_is_reported_and_previous_used(tmp_path):
    warnings = []
    ck = Checkpoints(tmp_path, limit=5, warn=warnings.append)
    for step in (1, 2, 3):
        ck.save(state(step))
    newest = tmp_path / "checkpoints" / "step_3.pt"
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: same size, different hash
    newest.write_bytes(bytes(data))
    assert verify(newest) == "corrupt (sha256 mismatch)"
    loaded, path = ck.load_latest()
    assert loaded["step"] == 2 and path.name == "step_2.pt"
    assert len(warnings) == 1 and "step_3.pt is corrupt" in warnings[0] and "previous" in warnings[0]

    (tmp_path / "checkpoints" / "step_2.pt").write_bytes(b"truncated")
    assert ck.load_latest()[0]["step"] == 1 and "size" in warnings[-1]


def test_checkpoint_without_sidecar_counts_as_incomplete(tmp_path):
    warnings = []
    ck = Checkpoints(tmp_path, warn=warnings.append)
    ck.save(state(1))
    ck.save(state(2))
    (tmp_path / "checkpoints" / "step_2.pt.meta.json").unlink()  # killed between the two renames
    assert ck.load_latest()[0]["step"] == 1
    assert "incomplete" in warnings[0]
    assert Checkpoints(tmp_path / "empty").load_latest() is None


def test_best_model_is_replaced_whole(tmp_path):
    ck = Checkpoints(tmp_path)
    tok = tmp_path / "tok.json"
    tok.write_text("{}")
    ck.save_best({"w": torch.ones(2)}, {"config.json": b'{"a": 1}', "tokenizer.json": tok})
    ck.save_best({"w": torch.zeros(2)}, {"config.json": b'{"a": 2}', "tokenizer.json": tok})
    best = tmp_path / "best-model"
    assert sorted(p.name for p in best.iterdir()) == ["checksums.json", "config.json", "model.pt", "tokenizer.json"]
    assert json.loads((best / "config.json").read_text()) == {"a": 2}
    assert torch.equal(load(best / "model.pt")["w"], torch.zeros(2))
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    # a crash between the two renames leaves only the old directory: it is put back
    best.rename(tmp_path / ".best-model.old")
    ck.recover_best()
    assert (best / "model.pt").exists()


def test_rng_states_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(3), np.random.seed(4), random.seed(5)
    ck = Checkpoints(tmp_path)
    ck.save({"step": 1, "rng": rng_state()})
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(0), np.random.seed(0), random.seed(0)
    set_rng_state(ck.load_latest()[0]["rng"])  # weights_only load: plain containers only
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expected[0], got[0]) and np.array_equal(expected[1], got[1]) and expected[2] == got[2]
