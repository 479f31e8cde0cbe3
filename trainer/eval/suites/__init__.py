"""The evaluation suites. Each module scores a model through one function the tests can feed
with reference answers instead of a model (the oracle path runs the same code as the CLI):

    gsm8k.py     evaluate(items, generate_fn)           final-number exact match
    arith.py     evaluate(items, generate_fn)           synthetic holdout, the generators' checkers, per tier
    code.py      evaluate(items, generate_fn, ...)      HumanEval + MBPP programs in the sandbox, pass@1
    science_qa.py evaluate(items, generate_fn)          choice accuracy, BLEU / ROUGE-L of the rationale
    ppl.py       evaluate(windows, nll_fn, token_bytes) perplexity and bits per byte
    halting.py   evaluate(items, probe_fn)              halt Σ and expected cycles per tier
    bits.py      evaluate(items, generate_fn, probe_fn) the HRM test bed: exact match per question and length, gate μ

and ``run(ev, sources, options)``, which loads the data, builds the model's function and calls
``evaluate``. ``generate_fn(prompts) -> texts``. Importing this package loads no model code.
A suite is named after the corpus source it evaluates (``science_qa``); ``scienceqa`` still parses.
"""

from __future__ import annotations

import importlib

SUITE_NAMES: tuple[str, ...] = ("ppl", "gsm8k", "arith", "code", "science_qa", "halting", "bits")
ALIASES = {"scienceqa": "science_qa"}

__all__ = ["SUITE_NAMES", "get_suite", "parse_suites"]


def get_suite(name: str):
    """The suite module ``name`` (imported on first use)."""
    name = ALIASES.get(name, name)
    if name not in SUITE_NAMES:
        raise ValueError(f"unknown suite {name!r}; known: {', '.join(SUITE_NAMES)}")
    return importlib.import_module(f"trainer.eval.suites.{name}")


def parse_suites(spec: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """``"ppl,gsm8k"`` or a list -> validated names in the given order; ``None``/``"all"`` -> all."""
    if spec is None or spec == "all" or spec == ["all"]:
        return list(SUITE_NAMES)
    parts = spec.split(",") if isinstance(spec, str) else [p for s in spec for p in str(s).split(",")]
    names = [ALIASES.get(p.strip(), p.strip()) for p in parts if p.strip()]
    bad = [n for n in names if n not in SUITE_NAMES]
    if bad:
        raise ValueError(f"unknown suite {bad[0]!r}; known: {', '.join(SUITE_NAMES)}")
    return list(dict.fromkeys(names))
