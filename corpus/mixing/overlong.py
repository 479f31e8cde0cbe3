"""What a row longer than the run's ``max_seq_len`` becomes in a plan (the manifest's ``overlong``).

Builds store whole examples (only documents are cut into windows), so one version serves plans
at any context length; the plan decides, deterministically, per source:

    skip        the row is never drawn: its draws go to the rows that fit (whole examples only)
    cut_target  the row is drawn with its prompt whole and its target cut to fit; a row whose prompt
                alone leaves no room for one target token is skipped
    truncate    the row is drawn and its first max_seq_len tokens are kept, prompt cut if need be

Default: ``skip`` for versions of whole examples (a cut worked solution loses its answer),
``truncate`` for document windows (a window is an arbitrary cut of the text anyway).
The reader (corpus.mixing.reader) delivers the first ``min(n_tokens, max_seq_len)`` tokens of a
drawn row, which is exactly the cut of ``cut_target`` and ``truncate``; the plan's ``n_tokens``
column holds that delivered length.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

POLICIES = ("skip", "cut_target", "truncate")
DEFAULT_POLICY = {"examples": "skip", "windows": "truncate"}


def version_layout(version: dict[str, Any]) -> str:
    """``windows`` (documents cut at build time) or ``examples`` (whole rows), from the version's
    build config (older versions: from the suite kind, ``text`` meaning windows)."""
    config = version.get("config")
    config = json.loads(config) if isinstance(config, str) else (config or {})
    if config.get("layout") in DEFAULT_POLICY:
        return config["layout"]
    from corpus.quality.suites import suite_kind

    return "windows" if suite_kind(version["source"], config) == "text" else "examples"


def policy_for(source_policy: str | None, mix_policy: str | None, version: dict[str, Any]) -> str:
    """The source's ``overlong``, else the mix's ``[data] overlong``, else the layout's default."""
    return source_policy or mix_policy or DEFAULT_POLICY[version_layout(version)]


def drawable(n_tokens: np.ndarray, prompt_lens: np.ndarray, policy: str, max_seq_len: int) -> np.ndarray:
    """Which rows the plan may draw under ``policy`` (a bool mask)."""
    if policy == "truncate":
        return np.ones(len(n_tokens), dtype=bool)
    fits = n_tokens <= max_seq_len
    if policy == "skip":
        return fits
    if policy == "cut_target":
        return fits | (prompt_lens < max_seq_len)
    raise ValueError(f"unknown overlong policy {policy!r} (one of {', '.join(POLICIES)})")


def target_counts(n_tokens: np.ndarray, prompt_lens: np.ndarray, keep: np.ndarray,
                  max_seq_len: int) -> tuple[int, int, int]:
    """``(target tokens, of them in skipped rows, of them cut from drawn rows)`` of a pool at
    ``max_seq_len``: the reader delivers a drawn row's first ``max_seq_len`` tokens, so a prompt
    that long or longer takes the row's whole target with it."""
    n = n_tokens.astype(np.int64)
    target = np.maximum(n - prompt_lens, 0)
    cut = np.minimum(np.clip(n - np.maximum(max_seq_len, prompt_lens), 0, None), target)
    return int(target.sum()), int(target[~keep].sum()), int(cut[keep].sum())
