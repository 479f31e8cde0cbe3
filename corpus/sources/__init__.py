"""Source registry: ``corpus.build NAME`` looks the name up here (imports are lazy).

Each entry is ``"module:Class"``; ``synthetic:<task>`` names come from
:mod:`corpus.sources.synthetic`.
"""

from __future__ import annotations

import importlib

from corpus.errors import UserError
from corpus.sources.base import Source

REGISTRY: dict[str, str] = {
    "gsm8k": "corpus.sources.gsm8k:GSM8K",
    "wiki": "corpus.sources.wiki:Wiki",
    "jsonl": "corpus.sources.generic:JsonRecords",
    "parquet": "corpus.sources.generic:ParquetRecords",
    "mbpp": "corpus.sources.mbpp:MBPP",
    "science_qa": "corpus.sources.science_qa:ScienceQA",
    "humaneval": "corpus.sources.humaneval:HumanEval",
}


def _synthetic() -> dict[str, type[Source]]:
    try:
        module = importlib.import_module("corpus.sources.synthetic")
    except ModuleNotFoundError:
        return {}
    return dict(module.SOURCES)


def source_names() -> list[str]:
    return sorted(set(REGISTRY) | set(_synthetic()))


def get_source(name: str) -> type[Source]:
    """The Source class for ``name``; an unknown name is a one-line error listing the known ones."""
    if name.startswith("synthetic"):
        synthetic = _synthetic()
        if name in synthetic:
            return synthetic[name]
    elif name in REGISTRY:
        module_name, _, cls = REGISTRY[name].partition(":")
        try:
            return getattr(importlib.import_module(module_name), cls)
        except ModuleNotFoundError:
            pass
    raise UserError(f"unknown source {name!r}; known: {', '.join(source_names())}")
