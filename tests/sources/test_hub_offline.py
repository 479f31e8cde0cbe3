"""Without --from the sources read the hub; offline that is one line saying what to pass instead."""

from __future__ import annotations

import pytest

from tests.sources.helpers import build


@pytest.mark.parametrize("source, args, hub", [
    ("mbpp", [], "google-research-datasets/mbpp split train"),
    ("mbpp", ["--sanitized", "--split", "test"], "google-research-datasets/mbpp split test"),
    ("science_qa", ["--split", "val"], "derek-thomas/ScienceQA split validation"),
    ("humaneval", [], "openai/openai_humaneval split test"),
])
def test_offline_hub_read_is_a_one_line_error(tmp_path, tokenizer_path, capsys, monkeypatch, source, args, hub):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert build(tmp_path, tokenizer_path, source, *args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot load {hub} from the hub (offline: HF_HUB_OFFLINE is set)")
    assert "pass --from PATH" in err and err.count("\n") == 1
