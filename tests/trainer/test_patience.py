"""Early stopping counts consecutive increases, and only after the grace steps."""

from __future__ import annotations

from trainer.validate import Patience


def run(losses, patience, grace, every=10):
    p = Patience(patience=patience, grace_steps=grace)
    for i, loss in enumerate(losses, start=1):
        improved, stop = p.update(i * every, loss)
        if stop:
            return i * every, p
    return None, p


def test_stops_after_consecutive_increases():
    stop, p = run([5.0, 4.0, 4.5, 4.6, 4.7, 3.0], patience=3, grace=0)
    assert stop == 50 and p.best == 4.0 and p.best_step == 20


def test_a_decrease_resets_the_count():
    stop, p = run([5.0, 5.1, 5.2, 5.0, 5.1, 5.2, 4.0], patience=3, grace=0)
    assert stop is None and p.best == 4.0 and p.bad_evals == 0


def test_increases_inside_the_grace_do_not_count():
    losses = [5.0, 5.1, 5.2, 5.3, 5.4, 5.5, 5.6]  # evaluations at steps 10 .. 70
    assert run(losses, patience=3, grace=0)[0] == 40
    assert run(losses, patience=3, grace=35)[0] == 60  # steps 40, 50, 60 count
    assert run(losses, patience=3, grace=70)[0] is None
    assert run(losses, patience=0, grace=0)[0] is None  # 0 = never stop


def test_state_round_trip():
    _, p = run([5.0, 5.1], patience=3, grace=0)
    q = Patience(patience=3)
    q.load_state_dict(p.state_dict())
    assert (q.best, q.last, q.bad_evals) == (5.0, 5.1, 1)
    assert q.update(30, 5.2) == (False, False) and q.update(40, 5.3) == (False, True)


def test_non_finite_loss_counts_as_an_increase_and_never_as_best():
    stop, p = run([5.0, float("nan"), float("inf")], patience=2, grace=0)
    assert stop == 30 and p.best == 5.0
