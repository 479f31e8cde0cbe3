"""Batches: right padding, next-token labels (with or without the prompt), length bucketing."""

from __future__ import annotations

import numpy as np
import pytest

from trainer.data import Row, bucket, collate


def rows(lengths, prompt=2):
    return [Row(i, f"s:{i}", np.arange(10, 10 + n, dtype=np.uint16), min(prompt, n)) for i, n in enumerate(lengths)]


def test_padding_and_labels():
    b = collate(rows([5, 3]), pad_id=0, max_seq_len=512)
    assert b.input_ids.tolist() == [[10, 11, 12, 13, 14], [10, 11, 12, 0, 0]]
    assert b.labels.tolist() == [[11, 12, 13, 14, -100], [11, 12, -100, -100, -100]]
    assert b.prompt_lens.tolist() == [2, 2] and b.tokens == 8 and b.padded == 10
    assert b.pad_fraction == pytest.approx(0.2) and b.labelled == 6 and b.ids == ["s:0", "s:1"]


def test_target_only_loss_and_truncation():
    b = collate(rows([6], prompt=3), pad_id=0, max_seq_len=512, loss_on_prompt=False)
    # position 2 is the last prompt token: it predicts the first target token (13)
    assert b.labels.tolist() == [[-100, -100, 13, 14, 15, -100]]
    t = collate(rows([6], prompt=3), pad_id=0, max_seq_len=4)
    assert t.input_ids.tolist() == [[10, 11, 12, 13]] and t.labels.tolist() == [[11, 12, 13, -100]]
    assert collate(rows([6], prompt=9), pad_id=0, max_seq_len=4).prompt_lens.tolist() == [4]


def test_bucketing_cuts_padding_and_keeps_every_row():
    rng = np.random.default_rng(0)
    lengths = rng.integers(4, 200, size=64).tolist()
    window = rows(lengths)
    plain = [collate(window[i:i + 8], 0, 512) for i in range(0, 64, 8)]
    bucketed = [collate(b, 0, 512) for b in bucket(window, 8, seed=1, window=0)]
    pad = lambda bs: 1 - sum(b.tokens for b in bs) / sum(b.padded for b in bs)  # noqa: E731
    assert pad(bucketed) < pad(plain) / 3
    assert sorted(p for b in bucketed for p in b.positions) == list(range(64))
    again = [b.positions for b in map(lambda x: collate(x, 0, 512), bucket(window, 8, seed=1, window=0))]
    assert again == [b.positions for b in bucketed]  # deterministic
    other = [b.positions for b in map(lambda x: collate(x, 0, 512), bucket(window, 8, seed=1, window=1))]
    assert other != again and sorted(map(tuple, other)) == sorted(map(tuple, again))  # only the order moves
    with pytest.raises(ValueError):
        bucket(window[:10], 8, 0, 0)
