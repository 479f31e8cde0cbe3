"""Which L and H applications lie on the autograd path of every state the HRM yields.

The expected sets are written from the rule in words (hrm.py's docstring), not from the loop:

* plain (``every_cycle=False``): the last ``bptt`` L updates and the last ``bptt`` H updates
  carry gradient; cycle c's state reaches every one of them up to cycle c, and nothing when its
  own H update ran without gradient.
* segments (``every_cycle=True``): in each cycle the last L update, the cycle's H update and
  any L update of the BPTT tail carry gradient; cycle c's state reaches back to the start of
  its segment, and a new segment starts at cycle c unless the tail starts before cycle c.
* whole cycle (TRM's rule, ``whole_cycle=True``): as above, and every L update of a cycle whose
  H update carries gradient carries it too.

The measured sets come from autograd itself: forward hooks record the graph node of every
application's output, and a walk of the yielded state's graph says which of them it reaches.
"""

from __future__ import annotations

import itertools

import pytest
import torch

from trainer.model import ModelConfig
from trainer.model.hrm import HRMCore


def expected_paths(h: int, l: int, bptt: int, every_cycle: bool, whole: bool = False) -> list[set[str]]:
    total = h * l
    in_l_tail = lambda i: i >= total - bptt  # noqa: E731 - the rule, read aloud
    if not every_cycle:
        out = []
        for c in range(h):
            if c < h - bptt:  # this cycle's H update ran without gradient
                out.append(set())
                continue
            hs = {f"H{k}" for k in range(max(0, h - bptt), c + 1)}
            ls = {f"L{i}" for i in range((c + 1) * l) if in_l_tail(i) or (whole and i // l >= h - bptt)}
            out.append(hs | ls)
        return out
    out, start = [], 0
    for c in range(h):
        if not any(in_l_tail(i) for i in range(c * l)):  # the tail starts in or after cycle c
            start = c
        hs = {f"H{k}" for k in range(start, c + 1)}
        ls = {f"L{i}" for i in range(start * l, (c + 1) * l) if in_l_tail(i) or i % l == l - 1 or whole}
        out.append(hs | ls)
    return out


def measured_paths(core: HRMCore, h: int, l: int, bptt: int, every_cycle: bool,
                   whole: bool = False) -> list[set[str]]:
    nodes: list[tuple[str, object]] = []
    counts = {"L": 0, "H": 0}

    def hook(name):
        def record(_module, _inputs, output):
            if output.grad_fn is not None:
                nodes.append((f"{name}{counts[name]}", output.grad_fn))
            counts[name] += 1
        return record

    handles = [core.L.register_forward_hook(hook("L")), core.H.register_forward_hook(hook("H"))]
    x = torch.randn(2, 3, 16, dtype=torch.float64, requires_grad=True)
    try:
        states = list(core.cycles(x, h, l, bptt, every_cycle=every_cycle, whole_cycle=whole))
    finally:
        for handle in handles:
            handle.remove()
    paths = []
    for z in states:
        reached, todo = set(), [z.grad_fn] if z.grad_fn is not None else []
        while todo:
            node = todo.pop()
            if node is None or node in reached:
                continue
            reached.add(node)
            todo.extend(next_node for next_node, _ in node.next_functions)
        paths.append({name for name, node in nodes if node in reached})
    return paths


GRID = [(h, l, b, every) for h, l, b, every in itertools.product((1, 2, 3, 4), (1, 2, 3), (1, 2, 3, 5),
                                                                  (False, True))]


@pytest.fixture(scope="module")
def core():
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=8, d_model=8, n_layers=1, headdim=8, d_state=4, d_hrm=16,
                      hrm_slots=3, hrm_heads=2)
    return HRMCore(cfg).double()


@pytest.mark.parametrize("h,l,bptt,every_cycle", GRID)
def test_autograd_path_of_every_yielded_state(core, h, l, bptt, every_cycle):
    assert measured_paths(core, h, l, bptt, every_cycle) == expected_paths(h, l, bptt, every_cycle)


@pytest.mark.parametrize("h,l,bptt,every_cycle", GRID)
def test_autograd_path_with_whole_cycle_gradient(core, h, l, bptt, every_cycle):
    assert measured_paths(core, h, l, bptt, every_cycle, True) == expected_paths(h, l, bptt, every_cycle, True)


def test_whole_cycle_cases_by_hand(core):
    """TRM's rule: 3 cycles x 2 L steps under deep supervision, each cycle its own segment with
    gradient through both of its L updates; without segments only the last cycle's."""
    assert measured_paths(core, 3, 2, 1, True, True) == [{"L0", "L1", "H0"}, {"L2", "L3", "H1"},
                                                         {"L4", "L5", "H2"}]
    assert measured_paths(core, 3, 2, 1, False, True) == [set(), set(), {"L4", "L5", "H2"}]


def test_the_issue_cases_by_hand(core):
    """3 cycles x 1 L step (deep supervision or halting on): the last state depends on L2 and
    H2 only; with bptt == l_steps == 2 the last segment is the last cycle's own two L steps."""
    assert measured_paths(core, 3, 1, 1, True) == [{"L0", "H0"}, {"L1", "H1"}, {"L2", "H2"}]
    assert measured_paths(core, 3, 2, 2, True)[-1] == {"L4", "L5", "H2"}
    assert measured_paths(core, 3, 2, 1, False) == [set(), set(), {"L5", "H2"}]
    assert measured_paths(core, 2, 2, 3, True)[-1] == {"L1", "L2", "L3", "H0", "H1"}


def test_no_grad_yields_no_graph(core):
    with torch.no_grad():
        assert measured_paths(core, 3, 2, 2, True) == [set(), set(), set()]
