"""Helpers for the mixing tests: manifests written as real TOML files, catalog peeks, RSS."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{_key(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(value)


def _key(k: Any) -> str:
    k = str(k)
    return k if k.replace("_", "").replace("-", "").isalnum() else json.dumps(k)


def write_manifest(path: Path, data: dict[str, Any], sources: list[dict[str, Any]], run: str = "t",
                   extra: str = "") -> Path:
    """A manifest file: ``data`` scalars/tables (tokenizer_train as a table), ``sources`` entries."""
    lines = ["[run]", f"name = {toml_value(run)}", "", "[data]"]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    lines += [f"{_key(k)} = {toml_value(v)}" for k, v in data.items() if k not in tables]
    for name, table in tables.items():
        lines += ["", f"[data.{name}]"] + [f"{_key(k)} = {toml_value(v)}" for k, v in table.items()]
    for src in sources:
        lines += ["", "[[data.sources]]"] + [f"{_key(k)} = {toml_value(v)}" for k, v in src.items()]
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


def run_cli(module: str, *args: str, timeout: float = 300, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)


def run_python(code: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                          timeout=timeout, cwd=REPO)
