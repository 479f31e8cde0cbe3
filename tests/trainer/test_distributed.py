"""Two gloo ranks update exactly as one process: every weight and every optimizer state, after
closed-gate steps (the HRM side has no gradient) and after the gate opens (deep supervision and
halting on, so every loss term's rank weighting is exercised).

The model runs in float64, so the only difference left is the order in which the two ranks'
gradients are summed. Bound: 1e-12 absolute on every weight and Adam moment (values of order 1,
lr 0.01). Measured: 1.2e-15 after the closed steps, 6.2e-14 after the open ones (weights), 6e-17
(moments). With the zero-filled gradients this replaced, the same test sees 1.5e-3 after the
closed steps (weight decay on every HRM matrix) and 3.5e-2 after the open ones.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from .conftest import REPO, env

WORKER = Path(__file__).with_name("rank_worker.py")
HRM_PREFIXES = ("pool.", "core.", "bridge.", "halting.")
BOUND = 1e-12

pytestmark = pytest.mark.slow  # three subprocesses, ~40 s on the shared 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("ranks")
    port = free_port()
    procs = [subprocess.Popen([sys.executable, str(WORKER), "0", "1", "0", str(out / "single.pt")], env=env(), cwd=REPO)]
    procs += [subprocess.Popen([sys.executable, str(WORKER), str(r), "2", str(port), str(out / "ranks.pt")],
                               env=env(), cwd=REPO) for r in (0, 1)]
    for p in procs:
        assert p.wait(timeout=300) == 0
    return torch.load(out / "single.pt", weights_only=False), torch.load(out / "ranks.pt", weights_only=False)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


@pytest.mark.parametrize("phase", ["closed", "open"])
def test_two_ranks_equal_one_process_weights_and_optimizer_state(runs, phase):
    single, ranks = runs[0][phase], runs[1][phase]
    assert single["model"].keys() == ranks["model"].keys()
    worst = {k: max_diff(single["model"][k], ranks["model"][k]) for k in single["model"]}
    assert max(worst.values()) <= BOUND, sorted(worst.items(), key=lambda kv: -kv[1])[:5]

    names = single["names"]
    one, two = single["optimizer"]["state"], ranks["optimizer"]["state"]
    # same parameters have state (ids index named_parameters sorted, trainer/optim.py groups)
    assert one.keys() == two.keys()
    for pid in one:
        assert float(one[pid]["step"]) == float(two[pid]["step"])
        for moment in ("exp_avg", "exp_avg_sq"):
            assert max_diff(one[pid][moment], two[pid][moment]) <= BOUND
    assert len(names) == sum(len(g["params"]) for g in single["optimizer"]["param_groups"])


def test_closed_gate_leaves_the_hrm_side_untouched_on_every_rank(runs):
    """The defect this guards: zero-filled gradients gave AdamW a step (and weight decay) for
    every HRM parameter while no gradient could reach it."""
    for states in runs:
        initial, closed = states["initial"]["model"], states["closed"]["model"]
        hrm = [k for k in initial if k.startswith(HRM_PREFIXES)]
        assert hrm and all(torch.equal(initial[k], closed[k]) for k in hrm)
        steps = {float(s["step"]) for s in states["closed"]["optimizer"]["state"].values()}
        assert steps == {6.0}
        with_state = len(states["closed"]["optimizer"]["state"])
        names = states["initial"]["names"]
        assert with_state == sum(1 for k in names if not k.startswith(HRM_PREFIXES))  # no HRM state yet
        opened = states["open"]["model"]
        assert all(not torch.equal(initial[k], opened[k]) for k in names if k.startswith(HRM_PREFIXES))

