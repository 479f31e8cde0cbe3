"""Issue 14 item 4: a run whose checkpoints are all damaged refuses in one line instead of
silently restarting over them, and best-model/ is never replaced by a worse model."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from corpus.errors import UserError
from trainer import resume
from trainer.checkpoint import Checkpoints


def state(step):
    return {"step": step, "model": {"w": torch.full((3,), float(step))}, "plan_id": "p1", "manifest_sha": "m"}


def _flip(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_all_checkpoints_corrupt_refuses_then_start_over_archives(tmp_path):
    ck = Checkpoints(tmp_path, warn=lambda m: None)
    for step in (2, 4, 6):
        ck.save(state(step))
    ck.save(state(6), final=True)
    for p in (tmp_path / "checkpoints").glob("*.pt"):
        _flip(p)
    with pytest.raises(UserError) as exc:
        resume.decide(ck, "p1", "m", False, None, tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and "none of its 4 checkpoints is loadable" in msg and "--start_over" in msg
    assert len(list((tmp_path / "checkpoints").glob("*.pt"))) == 4  # nothing touched by the refusal
    start = resume.decide(ck, "p1", "m", False, None, tmp_path, start_over=True)
    assert start.kind == "fresh" and "archive" in start.note
    assert not (tmp_path / "checkpoints").exists()
    assert len(list((tmp_path / "archive").glob("*/checkpoints/*.pt"))) == 4


def test_best_model_is_never_replaced_by_a_worse_one(tmp_path):
    warnings = []
    ck = Checkpoints(tmp_path, warn=warnings.append)

    def best(loss, plan="p1"):
        ck.save_best({"model": {"w": torch.tensor([loss])}, "val_loss": loss, "plan_id": plan},
                     {"plan.json": json.dumps({"plan_id": plan, "val_loss": loss}).encode()})
        return json.loads((tmp_path / "best-model" / "plan.json").read_text())["val_loss"]

    assert best(2.0) == 2.0
    assert best(1.5) == 1.5  # better: replaced
    assert best(3.0) == 1.5 and "kept" in warnings[-1]  # a restarted count's first "improvement"
    assert best(1.5) == 1.5
    assert best(3.0, plan="p2") == 3.0  # another plan's best is not comparable: replaced


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_run_with_every_checkpoint_corrupt_refuses_and_keeps_its_best_model(tiny, tmp_path):
    runs = tmp_path / "runs"
    tiny.run(runs=runs)
    run_dir = runs / "tiny"
    for p in (run_dir / "checkpoints").glob("*.pt"):
        _flip(p)
    best, final = run_dir / "best-model" / "model.pt", run_dir / "checkpoints" / "final.pt"
    before = (_sha(best), _sha(final))
    refused = tiny.run(runs=runs, check=False)
    assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
    line = refused.stderr.strip().splitlines()[-1]
    assert "none of its" in line and "checkpoints is loadable" in line and "--start_over" in line
    assert "Traceback" not in refused.stderr
    assert (_sha(best), _sha(final)) == before  # the intact best model and final.pt are untouched
    again = tiny.run("--start_over", runs=runs)
    assert "start_over" in again.stdout
    (archived,) = list((run_dir / "archive").glob("*/best-model/model.pt"))
    assert _sha(archived) == before[0]


# --- issue 22: integrity fails closed, a forbidden pickle global is one line --------------------

def _best(tmp_path):
    ck = Checkpoints(tmp_path, warn=lambda m: None)
    ck.save_best({"model": {"w": torch.arange(64.0)}, "val_loss": 1.0, "plan_id": "p1"},
                 {"plan.json": json.dumps({"plan_id": "p1", "val_loss": 1.0}).encode()})
    return tmp_path / "best-model" / "model.pt"


def test_a_missing_checksum_file_is_as_bad_as_a_wrong_one(tmp_path):
    from trainer.checkpoint import load

    model = _best(tmp_path)
    assert load(model)["val_loss"] == 1.0
    _flip(model)
    (model.parent / "checksums.json").unlink()  # deleting the evidence does not help
    with pytest.raises(UserError) as exc:
        load(model)
    assert "\n" not in str(exc.value) and "checksums.json: missing" in str(exc.value) and str(model) in str(exc.value)
    intact = _best(tmp_path / "again")
    (intact.parent / "checksums.json").unlink()
    with pytest.raises(UserError):  # an intact file that cannot be checked is refused too
        load(intact)


def test_a_checkpoint_without_its_sidecar_is_refused_by_every_consumer(tmp_path):
    from trainer.checkpoint import load
    from trainer.eval.load import load_evaluable

    ck = Checkpoints(tmp_path / "run", warn=lambda m: None)
    path = ck.save(state(3))
    (path.parent / (path.name + ".meta.json")).unlink()
    for consumer in (lambda: load(path), lambda: resume.decide(Checkpoints(tmp_path / "new"), "p1", "m", False, str(path), tmp_path),
                     lambda: load_evaluable(path)):
        with pytest.raises(UserError) as exc:
            consumer()
        assert "\n" not in str(exc.value) and "step_3.pt.meta.json: missing" in str(exc.value), str(exc.value)


class Planted:  # a global no safe load may construct
    def __reduce__(self):
        return (print, ("planted code ran",))


def test_a_forbidden_pickle_global_is_one_line_without_the_unsafe_advice(tmp_path, capsys):
    import hashlib as _h

    path = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "x": Planted()}, path)
    meta = {"step": 1, "bytes": path.stat().st_size, "sha256": _h.sha256(path.read_bytes()).hexdigest()}
    (tmp_path / "evil.pt.meta.json").write_text(json.dumps(meta))  # integrity holds: the pickle is the problem
    with pytest.raises(UserError) as exc:
        resume.decide(Checkpoints(tmp_path / "new"), "p1", "m", False, str(path), tmp_path)  # init_from
    msg = str(exc.value)
    assert "\n" not in msg and "refused" in msg and "global print" in msg, msg
    assert "weights_only" not in msg and "planted code ran" not in capsys.readouterr().out
