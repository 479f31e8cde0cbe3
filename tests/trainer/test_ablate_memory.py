"""What the HRM's memory carries (trainer/ablate/report.py:memory_carried): each HRM arm's own
score minus the same weights' score with the gate shut, paired over seeds and items, per question.

Built from hand-made evaluation records so the pairing and the grouping can be checked exactly
against the interval formula (trainer/ablate/stats.py) applied by hand.
"""

from __future__ import annotations

import numpy as np
import pytest

from corpus.errors import UserError
from trainer.ablate.report import memory_carried, memory_table
from trainer.ablate.spec import Arm, Evaluation, Header, SpecFile, Spec
from trainer.ablate.stats import difference, estimate


def _spec(tmp_path) -> Spec:
    parsed = SpecFile(ablation=Header(name="t", manifest="m.toml", seeds=[0, 1]), evaluation=Evaluation(suites=["bits"]),
                      arms=[Arm(name="plain"), Arm(name="hrm")])
    return Spec(tmp_path / "s.toml", parsed, b"")


def _items(flags, groups):
    return [{"id": f"i{j}", "group": g, "tier": 0, "values": {"accuracy": float(f)}}
            for j, (f, g) in enumerate(zip(flags, groups))]


GROUPS = ["parity", "parity", "parity", "mod3", "mod3"]
FULL = {0: [1, 1, 0, 1, 0], 1: [1, 0, 1, 1, 1]}
SHUT = {0: [0, 1, 0, 0, 0], 1: [1, 0, 0, 1, 0]}


def _evals(shut_ids=None):
    evals = {}
    for seed in (0, 1):
        evals[("plain", seed)] = {"suites": {"bits": {"metrics": {}, "items": _items([0] * 5, GROUPS)}}}
        left = _items(SHUT[seed], GROUPS)
        if shut_ids and seed == 1:
            left[0]["id"] = "other"
        evals[("hrm", seed)] = {"suites": {"bits": {"metrics": {}, "items": _items(FULL[seed], GROUPS)}},
                                "memory_left_out": {"bits": {"metrics": {}, "items": left}}}
    return evals


def test_carried_is_the_paired_difference_per_question_and_overall(tmp_path):
    out = memory_carried(_spec(tmp_path), _evals())
    assert set(out) == {"hrm"}  # the plain decoder has no memory to leave out
    full, shut = np.array([FULL[0], FULL[1]], float), np.array([SHUT[0], SHUT[1]], float)
    for key, cols in (("bits/accuracy", [0, 1, 2, 3, 4]), ("bits/parity/accuracy", [0, 1, 2]),
                      ("bits/mod3/accuracy", [3, 4])):
        got = out["hrm"][key]
        assert got["left_out"] == estimate(shut[:, cols]).as_dict()
        assert got["carried"] == difference(full[:, cols], shut[:, cols]).as_dict()
    assert out["hrm"]["bits/parity/accuracy"]["carried"]["mean"] == pytest.approx((2 + 2) / 6 - (1 + 1) / 6)
    rows = memory_table({"memory_left_out": out})
    assert rows[0] == "| arm | parity | mod3 |" and rows[2].startswith("| hrm | ")


def test_other_items_with_the_memory_left_out_are_refused(tmp_path):
    with pytest.raises(UserError, match="hrm-s1: suite bits with the memory left out scored other items"):
        memory_carried(_spec(tmp_path), _evals(shut_ids=True))
