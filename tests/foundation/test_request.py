"""The build request: one typed, serialisable value from argv, keyword arguments or a manifest,
and the layering it allows (the API on top, nothing below importing it)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.build import identify_version, request_from_argv
from corpus.errors import UserError
from corpus.request import BuildRequest

REPO = Path(__file__).resolve().parents[2]
# the CLI entry points and the API itself; corpus/__init__.py re-exports the API's verbs lazily
MAY_IMPORT_API = {"corpus/api.py", "corpus/__init__.py"}


def test_argv_keywords_and_json_give_one_request(tmp_path, tokenizer_path):
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"question": "1 + 1?", "answer": "#### 2"}) + "\n")
    argv = ["gsm8k", "--from", str(src), "--tokenizer", str(tokenizer_path), "--data-dir", str(tmp_path / "d"),
            "--strip-calculator", "--near-dedup", "drop", "--limit", "5", "--quiet"]
    from_cli = request_from_argv(argv)
    from_api = BuildRequest.create("gsm8k", src, tokenizer=tokenizer_path, data_dir=tmp_path / "d",
                                   strip_calculator=True, near_dedup="drop", limit=5, quiet=True)
    assert from_cli == from_api
    assert BuildRequest.from_json(from_api.to_json()) == from_api
    assert from_api.options["near_dedup_threshold"] == 0.8  # the declared default, filled in
    # the id the request builds is the same from either door
    assert identify_version(from_cli).version_id == identify_version(from_api).version_id


@pytest.mark.parametrize("kwargs, message", [
    ({"limt": 3}, r"unknown option 'limt' \(did you mean limit\?\)"),
    ({"near_dedup": "maybe"}, r"option near_dedup = 'maybe': choose from flag, drop, off"),
    ({"strip_calculator": "yes"}, r"option strip_calculator is true or false, not 'yes'"),
    ({"workers": 0}, r"--workers 0 is out of range"),
    ({"limit": 2.5}, r"limit must be an integer, not 2.5"),
    ({"executor": "slurm"}, r"--executor 'slurm': use one of local, ray"),
    ({"ray_address": "auto"}, r"--ray-address joins a Ray cluster: give it with --executor ray"),
])
def test_bad_requests_are_one_line(kwargs, message):
    with pytest.raises(UserError, match=message):
        BuildRequest.create("gsm8k", "x.jsonl", **kwargs)


def test_unknown_fields_in_json_are_refused():
    data = BuildRequest.create("wiki", "a.txt").to_dict()
    with pytest.raises(UserError, match=r"unknown field\(s\) colour"):
        BuildRequest.from_dict({**data, "colour": "red"})


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at its top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names}
    return found


def test_nothing_below_the_api_imports_it():
    importers = sorted(str(p.relative_to(REPO)) for p in (REPO / "corpus").rglob("*.py")
                       if "corpus.api" in _imports(p))
    assert set(importers) <= MAY_IMPORT_API, importers
    # the request sits below the build: it never reaches up into the build, the mixer or the API
    below = _imports(REPO / "corpus" / "request.py")
    assert not {m for m in below if m.startswith(("corpus.build", "corpus.mixing", "corpus.api"))}


def test_importing_the_api_pulls_in_no_flag_parsing_and_no_mixer():
    code = ("import sys, corpus.api; print(sorted(m for m in sys.modules if m == 'argparse' "
            "or m.startswith(('corpus.build', 'corpus.mixing', 'corpus.request', 'corpus.sources'))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
