"""``python -m trainer.generate`` and ``python -m trainer.eval`` end to end on a tiny trained run.

The run (tests/eval/tiny_run.py) is a real tokenizer plus a model trained in-process on three
GSM8K-style corpus rows until it reproduces them, saved as the trainer saves runs. So a correct
harness (checkpoint and tokenizer found, prompt rendered as the row was, greedy recurrent
generation, stop at EOS, final-number scoring) must give back exactly the trained answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.eval import tiny_run
from trainer.eval.__main__ import main as eval_main
from trainer.generate import main as generate_main

REPO = Path(__file__).resolve().parents[2]
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny-run")
    runs, run_dir, model, info = tiny_run.build_run(tmp)
    problems = tmp / "problems.jsonl"
    problems.write_text("".join(json.dumps(p) + "\n" for p in tiny_run.PROBLEMS))
    wiki = tmp / "wiki.txt"
    wiki.write_text(tiny_run.WIKI)
    (tmp / "empty").mkdir()
    return {"tmp": tmp, "runs": runs, "run_dir": run_dir, "model": model, "info": info, "problems": problems,
            "wiki": wiki, "empty": tmp / "empty"}


def cli(module: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, env=env,
                          timeout=240, cwd=REPO)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# --- trainer.generate --------------------------------------------------------------------------

def test_generate_gives_back_the_trained_answers_and_stops_at_eos(run):
    prompts = [ex.prompt for ex in tiny_run.examples()]
    args = ["tiny", "--runs-dir", str(run["runs"]), "--json", "--max-new-tokens", "60", "--threads", "1"]
    for p in prompts:
        args += ["--prompt", p]
    done = cli("trainer.generate", *args)
    assert done.returncode == 0, done.stderr
    out = json_lines(done.stdout)
    tok = run["info"].tokenizer
    for ex, row in zip(tiny_run.examples(), out):
        assert row["completion"] == ex.target and row["stopped"] == "eos"
        assert row["token_ids"] == tok.encode(ex.target, add_special_tokens=False).ids
        assert row["prompt_tokens"] == 1 + len(tok.encode(ex.prompt, add_special_tokens=False).ids)
    assert "tok/s" in done.stderr


def test_generate_greedy_is_deterministic_and_top_k_1_is_greedy(run, capsys):
    base = ["tiny", "--runs-dir", str(run["runs"]), "--json", "--max-new-tokens", "12",
            "--prompt", "Tom has 3", "--prompt", "Pens are"]

    def gen(*extra):
        assert generate_main(base + list(extra)) == 0
        return [r["token_ids"] for r in json_lines(capsys.readouterr().out)]

    greedy = gen()
    assert gen() == greedy
    assert gen("--temperature", "1.3", "--top-k", "1") == greedy
    sampled = gen("--temperature", "1.0", "--seed", "7")
    assert gen("--temperature", "1.0", "--seed", "7") == sampled
    # the checkpoint file and the run name give the same model
    step_file = run["run_dir"] / "checkpoints" / "step_50.pt"
    assert generate_main([str(step_file)] + base[1:]) == 0
    assert [r["token_ids"] for r in json_lines(capsys.readouterr().out)] == greedy


def test_generate_errors_are_one_line(run, capsys):
    assert generate_main(["nope", "--runs-dir", str(run["runs"]), "--prompt", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run or checkpoint nope") and err.count("\n") == 1
    assert generate_main(["tiny", "--runs-dir", str(run["runs"]), "--prompt", "x", "--top-k", "3"]) == 2
    err = capsys.readouterr().err
    assert "--temperature" in err and err.count("\n") == 1
    assert generate_main(["tiny", "--runs-dir", str(run["runs"])]) == 2
    assert capsys.readouterr().err == "error: give at least one --prompt (or --prompt-file)\n"


# --- trainer.eval ------------------------------------------------------------------------------

def test_eval_cli_scores_the_trained_answers_and_skips_missing_data(run):
    done = cli("trainer.eval", "tiny", "--runs-dir", str(run["runs"]), "--eval-data", str(run["empty"]),
               "--from", f"gsm8k={run['problems']}", "--from", f"wiki={run['wiki']}",
               "--suite", "ppl,gsm8k,arith,code,science_qa,halting", "--limit", "4", "--max-new-tokens", "40",
               "--threads", "1", "--quiet")
    assert done.returncode == 0, done.stderr
    result = json.loads((run["run_dir"] / "eval" / "best-model.json").read_text())
    assert result["checkpoint"]["step"] == 50 and result["checkpoint"]["gate_scale"] == 1.0
    s = result["suites"]
    m = s["gsm8k"]["metrics"]
    assert m["lenient_accuracy"] == m["lm_eval_strict_match"] == m["lm_eval_flexible_extract"] == 1.0 and m["n"] == 3
    assert s["code"]["status"] == "skipped" and "no humaneval evaluation data" in s["code"]["reason"]
    assert s["science_qa"]["status"] == "skipped"
    assert s["ppl"]["metrics"]["windows"] >= 2 and s["ppl"]["metrics"]["bits_per_byte"] > 0
    assert s["arith"]["metrics"]["n"] == 4 and "not checked" in " ".join(s["arith"]["notes"])
    assert s["halting"]["metrics"]["n"] == 4 and 1.0 <= s["halting"]["metrics"]["expected_cycles_mean"] <= 3.0
    assert abs(sum(s["halting"]["metrics"][f"p_cycle{c}"] for c in (1, 2, 3)) - 1.0) < 1e-6
    items = (run["run_dir"] / "eval" / "best-model" / "gsm8k.jsonl").read_text().splitlines()
    assert [json.loads(x)["correct"] for x in items] == [True, True, True]
    table = (run["run_dir"] / "eval" / "best-model.md").read_text()
    assert "| gsm8k | ok | lenient_accuracy 1.0000, lm_eval_strict_match 1.0000, lm_eval_flexible_extract 1.0000 |" in table and "| code | skipped |" in table
    assert "gsm8k: lenient_accuracy 1" in done.stdout and "lm_eval_strict_match 1" in done.stdout


def test_eval_compare_prints_both_runs_with_deltas(run, capsys):
    out = run["tmp"] / "cmp"
    common = ["--runs-dir", str(run["runs"]), "--eval-data", str(run["empty"]), "--from",
              f"gsm8k={run['problems']}", "--suite", "gsm8k", "--quiet", "--threads", "1"]
    step_file = str(run["run_dir"] / "checkpoints" / "step_50.pt")
    assert eval_main([step_file, "--out", str(out), *common]) == 0
    assert eval_main([step_file, "--out", str(out / "g0"), "--gate-scale", "0", *common]) == 0
    capsys.readouterr()
    assert eval_main(["--compare", str(out / "step_50.json"), str(out / "g0" / "step_50.json")]) == 0
    shown = capsys.readouterr().out
    assert "gsm8k/lenient_accuracy" in shown and "1.0000" in shown and "gsm8k/tier0/lenient_accuracy" in shown
    assert "gsm8k/lm_eval_strict_match" in shown
    a = json.loads((out / "step_50.json").read_text())["suites"]["gsm8k"]["metrics"]["lenient_accuracy"]
    b = json.loads((out / "g0" / "step_50.json").read_text())["suites"]["gsm8k"]["metrics"]["lenient_accuracy"]
    assert a == 1.0 and (f"{b - a:+.4g}" in shown if b != a else "+0" in shown)


def test_eval_cli_errors_are_one_line(run):
    bad = cli("trainer.eval", "tiny", "--runs-dir", str(run["runs"]), "--suite", "gsm8k,perplexity")
    assert bad.returncode == 2 and bad.stderr.startswith("error: --suite: unknown suite 'perplexity'")
    assert bad.stderr.count("\n") == 1
    none = cli("trainer.eval", "--runs-dir", str(run["runs"]))
    assert none.returncode == 2 and none.stderr.count("\n") == 1
