"""Same seed, same bytes; prefixes stable; other seeds, other items; tier specs parsed strictly."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import random
import subprocess
import sys
from pathlib import Path

import pytest

from corpus.synthetic import TASKS, generate, item_rng, iter_items, parse_tiers

REPO = Path(__file__).resolve().parents[2]


def dump(items) -> bytes:
    return "\n".join(json.dumps(dataclasses.asdict(it), sort_keys=True) for it in items).encode()


@pytest.mark.parametrize("task", sorted(TASKS))
def test_same_seed_gives_byte_identical_items(task):
    assert dump(generate(task, 120, "0-3", seed=3)) == dump(generate(task, 120, "0-3", seed=3))


@pytest.mark.parametrize("task", sorted(TASKS))
def test_different_seeds_give_different_items(task):
    a, b = generate(task, 80, "0-3", seed=1), generate(task, 80, "0-3", seed=2)
    assert sum(x.prompt != y.prompt for x, y in zip(a, b)) >= 70


@pytest.mark.parametrize("task", sorted(TASKS))
def test_generating_more_keeps_the_prefix(task):
    short, long = generate(task, 40, "0-3", seed=9), generate(task, 100, "0-3", seed=9)
    assert dump(long[:40]) == dump(short)
    assert dump(list(iter_items(task, 100, "0-3", seed=9, start=40))) == dump(long[40:])


def test_tiers_are_round_robin_and_an_item_depends_only_on_its_seed_task_tier_index():
    mixed = generate("arith", 8, "0-3", seed=4)
    assert [it.tier for it in mixed] == [0, 1, 2, 3, 0, 1, 2, 3]
    only_two = generate("arith", 8, [2], seed=4)
    assert [it.tier for it in only_two] == [2] * 8
    assert only_two[2].prompt == mixed[2].prompt and only_two[6].prompt == mixed[6].prompt
    assert len({it.native_id for it in generate("lists", 500, "0-3", seed=4)}) == 500


DIGEST = ("import dataclasses, hashlib, json\n"
          "from corpus.synthetic import TASKS, generate\n"
          "items = [dataclasses.asdict(i) for t in sorted(TASKS) for i in generate(t, 24, '0-3', seed=5)]\n"
          "print(hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest())\n")


def test_item_rng_is_a_stable_hash_not_pythons_salted_hash():
    expected = int.from_bytes(hashlib.sha256(b"hrm-synthetic:7:arith:1:42").digest()[:16], "big")
    assert item_rng(7, "arith", 1, 42).random() == random.Random(expected).random()
    digests = set()
    for salt in ("1", "2"):
        proc = subprocess.run([sys.executable, "-c", DIGEST], capture_output=True, text=True, cwd=REPO,
                              env={"PYTHONHASHSEED": salt, "PATH": ""}, check=True)
        digests.add(proc.stdout.strip())
    namespace: dict = {}
    with contextlib.redirect_stdout(io.StringIO()) as out:
        exec(DIGEST, namespace)
    assert digests == {out.getvalue().strip()}


@pytest.mark.parametrize("spec, tiers", [("0-3", (0, 1, 2, 3)), ("0,2", (0, 2)), ("3", (3,)),
                                         ("2,0-1", (0, 1, 2)), (" 1 , 3 ", (1, 3)), (2, (2,)),
                                         ([3, 1, 3], (1, 3))])
def test_parse_tiers(spec, tiers):
    assert parse_tiers(spec) == tiers


@pytest.mark.parametrize("spec", ["", "4", "0-4", "a", "1,,2", "-1", "3-x", []])
def test_parse_tiers_rejects_bad_specs(spec):
    with pytest.raises(ValueError):
        parse_tiers(spec)


def test_unknown_task_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown synthetic task 'nope'.*arith"):
        generate("nope", 1)
