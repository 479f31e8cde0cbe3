"""Where each suite's data comes from, rendered exactly as the corpus renders training rows.

    --from NAME=PATH             raw files, read and normalized by the corpus source NAME
        │ else
    catalog (data root)          the newest published version of NAME with kind 'eval'
        │                        (wiki: else the val split of the plan's wiki version)
        │ else
    raw directory (--eval-data)  the shared layout: gsm8k/test.jsonl, mbpp/mbpp.jsonl,
        │                        humaneval/HumanEval.jsonl.gz, scienceqa/problems.json,
        │                        wikitext2/valid.txt
        ▼ else
    DataMissing(reason)          the suite is skipped with that reason, never a crash

Raw records go through the same ``Source.normalize`` as ``corpus.build``, so a prompt here is
the text a training row of that source was tokenized from; catalog rows carry that text
already. Only test splits are read (MBPP task ids 11-510, ScienceQA ``test``).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus.errors import UserError

__all__ = ["EvalItem", "Window", "DataMissing", "DataSources", "RAW_LAYOUT", "load_items", "load_windows",
           "default_raw_dir"]

# dataset name (= corpus source) -> the raw file(s) under the raw directory
RAW_LAYOUT: dict[str, str] = {
    "gsm8k": "gsm8k/test.jsonl",
    "mbpp": "mbpp/mbpp.jsonl",
    "humaneval": "humaneval/HumanEval.jsonl.gz",
    "science_qa": "scienceqa/problems.json",
    "wiki": "wikitext2/valid.txt",
}
SPLIT = {"gsm8k": "test", "mbpp": "test", "humaneval": "test", "science_qa": "test", "wiki": "test"}
RAW_DIR_ENV = "HRM_EVAL_DATA"


@dataclass
class EvalItem:
    """One prompt to complete and what it is scored against."""

    id: str
    prompt: str
    reference: str  # the reference target text (a perfect model's generation)
    tier: int = 0
    group: str = ""  # humaneval / mbpp, a synthetic task, ...
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Window:
    """A token window for perplexity: ``tokens[1:]`` are scored; the HRM reads ``tokens[:prompt_len]``."""

    id: str
    tokens: list[int]
    prompt_len: int


class DataMissing(Exception):
    """A suite's data is not available here; the message says what to do."""


def default_raw_dir() -> Path | None:
    """``$HRM_EVAL_DATA``, else ``../shared/data`` beside the repository when it exists."""
    env = os.environ.get(RAW_DIR_ENV)
    if env:
        return Path(env)
    guess = Path(__file__).resolve().parents[3] / "shared" / "data"
    return guess if guess.is_dir() else None


@dataclass
class DataSources:
    data_root: Path | None = None
    raw_dir: Path | None = None
    paths: dict[str, list[str]] = field(default_factory=dict)  # --from NAME=PATH
    plan_id: str | None = None

    @staticmethod
    def parse_from(specs: list[str] | None) -> dict[str, list[str]]:
        """``["gsm8k=path", ...]`` -> ``{"gsm8k": ["path"]}``; names are corpus sources."""
        out: dict[str, list[str]] = {}
        for spec in specs or []:
            name, eq, path = spec.partition("=")
            name = {"scienceqa": "science_qa", "wikitext": "wiki"}.get(name.strip(), name.strip())
            if not eq or not path or name not in RAW_LAYOUT:
                raise UserError(f"--from {spec!r}: expected NAME=PATH with NAME one of {', '.join(RAW_LAYOUT)}")
            out.setdefault(name, []).append(path)
        return out


def _source(name: str, paths: list[str]):
    """A corpus Source instance with its default options, as ``corpus.build NAME --from paths``."""
    from corpus.sources import get_source

    cls = get_source(name)
    parser = argparse.ArgumentParser(add_help=False)
    cls.add_arguments(parser)
    args = parser.parse_args([])
    args.split, args.inputs, args.limit, args.seed, args.max_seq_len = SPLIT[name], paths, None, 0, 1 << 30
    source = cls(args)
    source.options()  # validates the options, one-line errors
    return source


def _raw_examples(name: str, paths: list[str]) -> list[tuple[Any, int]]:
    """``(Example, tier)`` for every good record of the files; bad records are skipped."""
    from corpus.errors import BadRecord
    from corpus.loading import Unreadable

    for p in paths:
        if not Path(p).exists():
            raise DataMissing(f"{name}: {p} does not exist")
    source = _source(name, paths)
    out = []
    for record in source.records(paths, SPLIT[name], None):
        if isinstance(record.data, Unreadable):
            continue
        try:
            produced = source.normalize(record)
        except BadRecord:
            continue
        for ex in produced if isinstance(produced, (list, tuple)) else [produced]:
            out.append((ex, source.tier(ex.features)))
    return out


def _item(name: str, id_: str, prompt: str, target: str, tier: int, meta: dict) -> EvalItem | None:
    if name == "mbpp" and meta.get("split") != "test":
        return None
    if name == "science_qa" and meta.get("split") not in ("test", None):
        return None
    return EvalItem(id=id_, prompt=prompt, reference=target, tier=int(tier), group=name, meta=meta)


def load_items(name: str, sources: DataSources, limit: int | None = None) -> tuple[list[EvalItem], str]:
    """A question/answer dataset's test items and where they came from."""
    from trainer.eval import catalog_data

    items: list[EvalItem] = []
    if name in sources.paths:
        where = f"--from {' '.join(sources.paths[name])}"
        for ex, tier in _raw_examples(name, sources.paths[name]):
            item = _item(name, f"{name}:{ex.native_id}", ex.prompt, ex.target, tier, ex.meta)
            if item:
                items.append(item)
    elif sources.data_root is not None and (version := catalog_data.eval_version(sources.data_root, name)):
        other_splits = 0
        for row in catalog_data.version_rows(sources.data_root, version["id"]):
            item = _item(name, row["id"], row["prompt"], row["target"], row["tier"], json.loads(row["meta"] or "{}"))
            if item:
                items.append(item)
            else:
                other_splits += 1
        items.sort(key=lambda it: _natural(it.id))
        where = f"catalog version {version['id']}" + _shortfall(sources.data_root, version, len(items), other_splits)
    elif sources.raw_dir is not None and (sources.raw_dir / RAW_LAYOUT[name]).exists():
        path = sources.raw_dir / RAW_LAYOUT[name]
        where = str(path)
        for ex, tier in _raw_examples(name, [str(path)]):
            item = _item(name, f"{name}:{ex.native_id}", ex.prompt, ex.target, tier, ex.meta)
            if item:
                items.append(item)
    else:
        raise DataMissing(f"no {name} evaluation data: no --from {name}=PATH, no published {name} version of kind "
                          f"'eval' in the catalog{_root_note(sources)}, and no {RAW_LAYOUT[name]} under the raw "
                          f"directory ({sources.raw_dir or 'none; set --eval-data or $' + RAW_DIR_ENV})")
    if not items:
        raise DataMissing(f"{name}: {where} holds no test items")
    return (items[:limit] if limit else items), where


def _shortfall(root: Path, version: dict, kept: int, other_splits: int) -> str:
    """How many items a catalog eval set holds and, when its build left records out, why: the
    quarantine count, the build's ``--limit``, rows of splits that are not evaluation data."""
    from trainer.eval import catalog_data

    quarantined = catalog_data.quarantine_count(root, version["id"])
    limit = (json.loads(version.get("config") or "{}") or {}).get("limit")
    why = []
    if quarantined:
        why.append(f"{quarantined} records quarantined at build (python -m corpus.sql \"SELECT ref, reason "
                   f"FROM quarantine WHERE version = '{version['id']}'\")")
    if limit:
        why.append(f"built with --limit {limit}")
    if other_splits:
        why.append(f"{other_splits} rows of other splits left out")
    return f" ({kept} items" + (": fewer than its source: " + "; ".join(why) if why else "") + ")"


def _natural(text: str) -> tuple:
    """Sort key with numbers compared as numbers (HumanEval/2 before HumanEval/10)."""
    import re

    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text))


def _root_note(sources: DataSources) -> str:
    return f" ({sources.data_root})" if sources.data_root is not None else ""


# -- perplexity windows ---------------------------------------------------------------------------

def _windows_from_rows(rows, same_tokenizer: bool, ev) -> list[Window]:
    out = []
    for row in rows:
        if same_tokenizer:
            prompt, target = list(row["prompt_ids"]), list(row["target_ids"])
        else:
            prompt, target = ev.encode_text(row["prompt"]), ev.encode_text(row["target"])
        if len(prompt) + len(target) >= 2:
            out.append(Window(row["id"], prompt + target, max(1, len(prompt))))
    return out


def _windows_from_text(name: str, paths: list[str], ev, seq_len: int, prompt_ratio: float = 0.5) -> list[Window]:
    """Documents cut into windows exactly as the builder cuts them (corpus.rows, stride 0)."""
    import numpy as np

    from corpus.rows import RowOptions, tokenize_examples

    docs = [(f"{name}#{i}", ex) for i, (ex, _tier) in enumerate(_raw_examples(name, paths))]
    if not docs:
        return []
    opts = RowOptions(name, seq_len, val_ratio=0.0, seed=0, prompt_ratio=prompt_ratio)
    rows, _ = tokenize_examples(docs, ev.tokenizer, opts, lambda features: 0)
    out = []
    for batch in rows.values():
        p_off = np.concatenate([[0], np.cumsum(batch.prompt_lens)])
        t_off = np.concatenate([[0], np.cumsum(batch.target_lens)])
        for i, row_id in enumerate(batch.ids):
            prompt = batch.prompt_tokens[p_off[i]:p_off[i + 1]].tolist()
            target = batch.target_tokens[t_off[i]:t_off[i + 1]].tolist()
            if len(prompt) + len(target) >= 2:
                out.append(Window(row_id, prompt + target, max(1, len(prompt))))
    return out


def load_windows(sources: DataSources, ev, limit: int | None = None, seq_len: int | None = None,
                 ) -> tuple[list[Window], str]:
    """Held-out wiki windows for perplexity, and where they came from."""
    from trainer.eval import catalog_data

    seq_len = seq_len or ev.max_seq_len
    root = sources.data_root
    cols = ("id", "prompt", "target", "prompt_ids", "target_ids")
    if "wiki" in sources.paths:
        windows = _windows_from_text("wiki", sources.paths["wiki"], ev, seq_len)
        where = f"--from {' '.join(sources.paths['wiki'])} ({seq_len}-token windows)"
    else:
        version, split = None, None
        if root is not None:
            version = catalog_data.eval_version(root, "wiki")
            if version is None and sources.plan_id:
                comps = [c for c in catalog_data.plan_components(root, sources.plan_id) if c["source"] == "wiki"]
                if comps:
                    version, split = catalog_data.version(root, comps[0]["version"]), "val"
        if version is not None:
            rows = catalog_data.version_rows(root, version["id"], split, cols)
            windows = _windows_from_rows(rows, version["tokenizer_sha"] == ev.tokenizer.sha256, ev)
            where = f"catalog version {version['id']}" + (f" ({split} split)" if split else "")
        elif sources.raw_dir is not None and (sources.raw_dir / RAW_LAYOUT["wiki"]).exists():
            path = sources.raw_dir / RAW_LAYOUT["wiki"]
            windows = _windows_from_text("wiki", [str(path)], ev, seq_len)
            where = f"{path} ({seq_len}-token windows)"
        else:
            raise DataMissing("no held-out wiki text: no --from wiki=PATH, no wiki version of kind 'eval' or in "
                              f"the run's plan{_root_note(sources)}, and no {RAW_LAYOUT['wiki']} under the raw "
                              f"directory ({sources.raw_dir or 'none; set --eval-data or $' + RAW_DIR_ENV})")
    if not windows:
        raise DataMissing(f"wiki: {where} holds no text")
    return (windows[:limit] if limit else windows), where
