"""GSM8K scored as lm-evaluation-harness scores it (its ``gsm8k`` task, version 3), beside ours.

    generation ─cut at the first stop sequence ("Question:", "</s>", "<|im_end|>")─►
        strict-match:      first match of  #### (\\-?[0-9\\.\\,]+)           (else "[invalid]")
        flexible-extract:  last match of   (-?[$0-9.,]{2,})|(-?[0-9]+)  (else "[invalid]")
    exact_match(prediction, reference) after removing ",", "$", everything up to "#### " and a
    final "." from both, case-insensitively

The same regexes, group selection, fallback and normalisation as ``lm_eval/tasks/gsm8k/gsm8k.yaml``
with ``lm_eval.filters.extraction.RegexFilter`` and ``exact_match_hf_evaluate``; the test holds
these functions to lm-eval's own code. Our lenient scorer (``answers.gsm8k_correct``: the last
``####``, values as fractions, ``$``, ``%``, units, ``\\boxed{}``-free numbers) counts more answers
right: the two are different metrics, reported under different names, never one for the other.
"""

from __future__ import annotations

import re

__all__ = ["STOP_SEQUENCES", "cut_at_stops", "strict_match", "flexible_extract", "extract_strict",
           "extract_flexible", "exact_match"]

STOP_SEQUENCES = ("Question:", "</s>", "<|im_end|>")  # generation_kwargs.until of the task
STRICT = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
IGNORE = (",", "\\$", "(?s).*#### ", "\\.$")  # metric_list[0].regexes_to_ignore
FALLBACK = "[invalid]"


def cut_at_stops(text: str, stops: tuple[str, ...] = STOP_SEQUENCES) -> str:
    """What lm-eval keeps of a generation: the text before the first stop sequence."""
    for stop in stops:
        text = text.split(stop)[0]
    return text


def _extract(regex: re.Pattern, group_select: int, text: str) -> str:
    found = regex.findall(text)
    if not found:
        return FALLBACK
    match = found[group_select]
    if isinstance(match, tuple):  # several groups: the first non-empty one
        match = next((m for m in match if m), FALLBACK)
    return match.strip()


def extract_strict(generation: str) -> str:
    return _extract(STRICT, 0, cut_at_stops(generation))


def extract_flexible(generation: str) -> str:
    return _extract(FLEXIBLE, -1, cut_at_stops(generation))


def _normalise(text: str) -> str:
    for pattern in IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def exact_match(prediction: str, reference: str) -> bool:
    return _normalise(prediction) == _normalise(reference)


def strict_match(generation: str, reference: str) -> bool:
    """lm-eval's ``exact_match,strict-match`` for one generation against the dataset's answer."""
    return exact_match(extract_strict(generation), reference)


def flexible_extract(generation: str, reference: str) -> bool:
    """lm-eval's ``exact_match,flexible-extract``."""
    return exact_match(extract_flexible(generation), reference)
