"""Stage B on a fresh data root: its init_from names stage A's run, and the error says stage A comes first."""

from __future__ import annotations

import pytest

from corpus.errors import UserError
from trainer.resume import resolve_init_from


def test_missing_init_from_run_says_the_stages_run_in_order(tmp_path):
    with pytest.raises(UserError) as info:
        resolve_init_from("hrm-gated-pretrain-smoke", tmp_path / "runs")
    line = str(info.value)
    assert "\n" not in line and "init_from hrm-gated-pretrain-smoke: no such file" in line
    assert "stages run in order" in line and "manifests/stageA.toml" in line and "trainer.import_hf" in line
