"""Run suites on an :class:`~trainer.eval.load.Evaluable` and write what they found.

    run_suites(ev, ["gsm8k", ...], sources, options) -> results dict
    write_results(results, out_dir) -> <out>/<tag>.json, <tag>.md, <tag>/<suite>.jsonl (one line per item)

A suite whose data is missing is ``{"status": "skipped", "reason": ...}``; any other failure of a
suite is recorded as ``{"status": "error", "reason": ...}`` and the others still run, so one broken
benchmark file does not lose an hour of generation.
"""

from __future__ import annotations

import json
import platform
import time
import traceback
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import torch

from trainer.eval.datasets import DataSources
from trainer.eval.suites import get_suite
from trainer.eval.suites.base import Options, SuiteResult

__all__ = ["run_suites", "write_results", "flat_metrics", "sources_for"]


def sources_for(ev, data_root: Path | None = None, raw_dir: Path | None = None,
                paths: dict[str, list[str]] | None = None) -> DataSources:
    from trainer.eval.datasets import default_raw_dir

    return DataSources(data_root=data_root if data_root is not None else ev.data_root,
                       raw_dir=raw_dir if raw_dir is not None else default_raw_dir(),
                       paths=paths or {}, plan_id=ev.plan_id)


def run_one(name: str, ev, sources: DataSources, options: Options) -> SuiteResult:
    started = time.perf_counter()
    try:
        result = get_suite(name).run(ev, sources, options)
    except Exception as exc:  # noqa: BLE001 - recorded, the other suites still run
        line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
        result = SuiteResult(name, status="error", reason=line, notes=[traceback.format_exc(limit=3)[-800:]])
    result.seconds = time.perf_counter() - started
    if result.status == "ok" and result.records:
        result.items = items_fingerprint(r.get("id") for r in result.records)
    return result


def items_fingerprint(ids) -> dict[str, Any]:
    """What ``--compare`` checks before it puts two results side by side: how many items were
    scored and a sha256 over their ids (in order), so a different limit, split or source shows."""
    import hashlib

    ids = [str(i) for i in ids]
    return {"n": len(ids), "sha256": hashlib.sha256("\n".join(ids).encode()).hexdigest()}


def run_suites(ev, names: list[str], sources: DataSources, options: Options, say=None) -> dict[str, Any]:
    """Every named suite, in order; returns the results document (suite records included)."""
    started = time.perf_counter()
    doc: dict[str, Any] = {
        "checkpoint": ev.describe(),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "host": {"python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads(),
                 "machine": platform.machine()},
        "options": {"limit": options.limit, "max_new_tokens": options.max_new_tokens,
                    "batch_size": options.batch_size, "workers": options.workers},
        "data": {"data_root": str(sources.data_root) if sources.data_root else None,
                 "raw_dir": str(sources.raw_dir) if sources.raw_dir else None, "from": sources.paths},
        "suites": {},
    }
    for name in names:
        result = run_one(name, ev, sources, options)
        doc["suites"][name] = result
        if say is not None:
            say(summary_line(result))
    doc["seconds"] = time.perf_counter() - started
    return doc


def summary_line(result: SuiteResult) -> str:
    if result.status != "ok":
        return f"{result.name}: {result.status} ({result.reason})"
    keys = [k for k in ("accuracy", "lenient_accuracy", "lm_eval_strict_match", "lm_eval_flexible_extract", "pass@1", "ppl", "bits_per_byte", "bleu", "rouge_l", "halt_sum_mean",
                        "expected_cycles_mean", "n", "windows") if k in result.metrics]
    shown = ", ".join(f"{k} {_fmt(result.metrics[k])}" for k in keys)
    return f"{result.name}: {shown}  [{result.seconds:.1f} s]"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def flat_metrics(doc: dict[str, Any]) -> dict[str, Any]:
    """``{"<suite>/<metric>": value}`` for every suite that ran (from a results dict or JSON)."""
    out: dict[str, Any] = {}
    for name, result in doc["suites"].items():
        data = result.as_dict() if isinstance(result, SuiteResult) else result
        if data["status"] == "ok":
            out.update({f"{name}/{k}": v for k, v in data["metrics"].items()})
            out[f"{name}/seconds"] = data["seconds"]
    return out


def write_results(doc: dict[str, Any], out_dir: Path, tag: str) -> dict[str, Path]:
    """Write the JSON, the markdown table and the per-item JSONL files; returns their paths."""
    from corpus.atomic import write_bytes_atomic
    from trainer.eval.report import markdown

    out_dir = Path(out_dir)
    plain = {**doc, "suites": {n: r.as_dict() if isinstance(r, SuiteResult) else r for n, r in doc["suites"].items()}}
    paths = {"json": out_dir / f"{tag}.json", "markdown": out_dir / f"{tag}.md"}
    items_dir = out_dir / tag
    for name, result in doc["suites"].items():
        if isinstance(result, SuiteResult) and result.records:
            path = items_dir / f"{name}.jsonl"
            write_bytes_atomic(path, b"".join(orjson.dumps(r, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
                                              for r in result.records))
            paths[f"items/{name}"] = path
            plain["suites"][name]["items"] = str(path.relative_to(out_dir))
    write_bytes_atomic(paths["json"], json.dumps(plain, indent=2, default=str).encode())
    write_bytes_atomic(paths["markdown"], markdown(plain).encode())
    return paths
