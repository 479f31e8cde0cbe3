"""The loader on a real plan: ranks read distinct positions, workers change nothing, epochs wrap,
a resume inside a bucketing window yields the same batches, and bucketing pads less."""

from __future__ import annotations

import numpy as np
import pytest

from corpus.mixing import PlanReader, open_plan
from trainer.data import StreamSpec, TrainStream, _runs, read_rows


@pytest.fixture(scope="module")
def plan(tiny):
    return open_plan(str(tiny.root), str(tiny.manifest), build_missing=False)


def spec(plan, rank=0, world=1, bucket_batches=2, batch_size=4):
    return StreamSpec(str(plan.root), plan.id, "train", len(plan.positions("train")), batch_size, bucket_batches,
                      rank, world, 0, plan.tokenizer.pad_id, plan.max_seq_len, True)


def take(stream, n):
    return [stream.next_batch() for _ in range(n)]


def test_ranks_read_distinct_positions_covering_the_single_process(plan):
    single = [p for b in take(TrainStream(spec(plan), 0, 8, 0), 8) for p in b.positions]
    ranks = [[p for b in take(TrainStream(spec(plan, r, 2), 0, 8, 0), 8) for p in b.positions] for r in (0, 1)]
    assert set(ranks[0]).isdisjoint(ranks[1])
    assert sorted(ranks[0] + ranks[1]) == sorted(single) == list(range(32))
    assert all(len(b.ids) == 2 for b in take(TrainStream(spec(plan, 1, 2), 0, 8, 0), 8))  # global batch / world


def test_workers_and_resume_inside_a_window_give_the_same_batches(plan):
    whole = take(TrainStream(spec(plan, bucket_batches=4), 0, 12, 0), 12)
    resumed = take(TrainStream(spec(plan, bucket_batches=4), 5, 12, 2), 7)  # two worker processes, mid-window
    for a, b in zip(whole[5:], resumed):
        assert a.ids == b.ids and a.positions == b.positions
        assert np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.labels, b.labels)


def test_rows_match_the_reader_and_epochs_wrap(plan):
    n = len(plan.positions("train"))
    wanted = [n - 3, n - 1, 1, 3, 5, 2]
    assert list(_runs(wanted)) == [(n - 3, 2, 2), (1, 2, 3), (2, 1, 1)]
    rows = read_rows(plan, "train", wanted)
    assert [r.position for r in rows] == wanted
    direct = {s.position: s for s in PlanReader(plan, "train", start=0).take(6)}
    for r in rows[2:5]:
        assert r.id == direct[r.position].id and np.array_equal(r.tokens, direct[r.position].tokens)
    steps_per_epoch = n // 4
    s = spec(plan, bucket_batches=1)
    wrapped = take(TrainStream(s, steps_per_epoch, steps_per_epoch + 1, 0), 1)[0]
    first = take(TrainStream(s, 0, 1, 0), 1)[0]
    assert wrapped.ids == first.ids  # the second epoch repeats the plan's order


def test_bucketing_pads_less(plan):
    pad = lambda bs: 1 - sum(b.tokens for b in bs) / sum(b.padded for b in bs)  # noqa: E731
    plain = pad(take(TrainStream(spec(plan, bucket_batches=1, batch_size=8), 0, 16, 0), 16))
    bucketed = pad(take(TrainStream(spec(plan, bucket_batches=16, batch_size=8), 0, 16, 0), 16))
    assert bucketed < plain / 2, (plain, bucketed)
