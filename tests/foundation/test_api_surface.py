"""The notebook surface of ``import corpus``: the verbs show in ``dir``, a wrong argument is a CorpusError."""

from __future__ import annotations

import pytest

import corpus


def test_dir_lists_the_api_verbs():
    names = dir(corpus)
    for verb in ("build_source", "plan", "open_plan", "batches", "query", "decode", "CorpusError", "Version"):
        assert verb in names


def test_batches_of_something_that_is_not_a_plan_is_a_corpus_error(tmp_path):
    with pytest.raises(corpus.CorpusError, match="pdoesnotexist|no plan|not registered|unknown"):
        next(corpus.batches("pdoesnotexist", data_dir=tmp_path))
    with pytest.raises(corpus.CorpusError, match="batches: plan must be"):
        next(corpus.batches(42))
