"""``trainer.eval --compare``: the headline table first, a loud warning (or, with --strict, a
refusal) when the two results were not scored on the same items, limits or data."""

from __future__ import annotations

import json

from tests.foundation.helpers import run_cli
from trainer.eval.report import comparability
from trainer.eval.runner import items_fingerprint


def _doc(ids, limit=None, accuracy=0.5, data="catalog version v1"):
    return {"options": {"limit": limit}, "checkpoint": {"tag": "best-model"},
            "suites": {"gsm8k": {"status": "ok", "metrics": {"accuracy": accuracy, "n": len(ids), "parsed": 1.0},
                                 "data": data, "seconds": 1.0, "items": items_fingerprint(ids)},
                       "halting": {"status": "skipped", "reason": "no halting head", "metrics": {}}}}


def test_comparability_names_every_difference():
    ids = [f"gsm8k:{i}" for i in range(10)]
    assert comparability(_doc(ids), _doc(ids, accuracy=0.7)) == []
    problems = comparability(_doc(ids), _doc(ids[:5], limit=5))
    assert problems == ["--limit differs: A none, B 5", "gsm8k: scored on 10 vs 5 items"]
    shuffled = comparability(_doc(ids), _doc(ids[::-1], data="/raw/gsm8k/test.jsonl"))
    assert shuffled == ["gsm8k: scored on other items (same count, 10)",
                        "gsm8k: data from catalog version v1 in A, /raw/gsm8k/test.jsonl in B"]
    b = _doc(ids)
    b["suites"]["ppl"] = {"status": "ok", "metrics": {"ppl": 3.0}}
    assert comparability(_doc(ids), b) == ["suites in one result only: ppl (B only)"]


def test_compare_cli_warns_loudly_and_strict_refuses(tmp_path):
    ids = [f"gsm8k:{i}" for i in range(10)]
    a, b, same = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "same.json"
    a.write_text(json.dumps(_doc(ids, accuracy=0.4)))
    b.write_text(json.dumps(_doc(ids[:5], limit=5, accuracy=0.8)))
    same.write_text(json.dumps(_doc(ids, accuracy=0.6)))
    proc = run_cli("trainer.eval", "--compare", str(a), str(b))
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert out.count("WARNING: not like for like") == 2 and "gsm8k: scored on 10 vs 5 items" in out
    assert out.index("headline metrics") < out.index("gsm8k/parsed")  # the compact table comes first
    headline = out[out.index("headline metrics"):out.index("gsm8k/parsed")]
    assert "gsm8k/accuracy" in headline and "+0.4" in headline and out.count("gsm8k/accuracy") == 2
    strict = run_cli("trainer.eval", "--compare", str(a), str(b), "--strict")
    assert strict.returncode == 2 and "not comparable" in strict.stderr and "--limit differs" in strict.stderr
    assert len(strict.stderr.strip().splitlines()) == 1
    clean = run_cli("trainer.eval", "--compare", str(a), str(same), "--strict")
    assert clean.returncode == 0 and "WARNING" not in clean.stdout and "+0.2" in clean.stdout


def test_compare_flags_gsm8k_scored_differently():
    """An old result's unnamed GSM8K "accuracy" (lenient) is not lm-eval's strict-match: not like for like."""
    from trainer.eval.report import comparability

    ids = {"n": 2, "sha256": "x"}
    old = {"options": {}, "suites": {"gsm8k": {"status": "ok", "items": ids, "data": "d",
                                               "metrics": {"accuracy": 0.7, "n": 2}}}}
    new = {"options": {}, "suites": {"gsm8k": {"status": "ok", "items": ids, "data": "d",
                                               "metrics": {"lenient_accuracy": 0.7, "lm_eval_strict_match": 0.4,
                                                           "lm_eval_flexible_extract": 0.6, "n": 2}}}}
    problems = comparability(old, new)
    assert problems == ["gsm8k: scored differently (only in A: accuracy; only in B: lenient_accuracy, "
                        "lm_eval_flexible_extract, lm_eval_strict_match)"]
    assert comparability(new, new) == []
