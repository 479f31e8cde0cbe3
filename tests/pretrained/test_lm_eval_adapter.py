"""lm-evaluation-harness scores our checkpoints: its real CLI (through ``python -m trainer.harness``,
which registers the ``hrm`` model and runs ``lm_eval``'s own command line) on local tasks, offline;
its numbers are checked against trainer.eval's perplexity code and our generation."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from tests.pretrained.conftest import REPO_ROOT

pytest.importorskip("lm_eval", reason="lm-eval is in the dev and lmeval extras")

DOCS = [
    {"text": "The quick brown fox jumps over the lazy dog.", "question": "Tom has 3 apples and buys 4 more?",
     "answer": "#### 7", "choices": [" seven", " three"], "label": 0},
    {"text": "Mamba is a state space model; it reads text one token at a time.", "question": "What is 2 + 3?",
     "answer": "#### 5", "choices": [" five", " two"], "label": 0},
]
TASKS = {
    "hrm_local_text": "output_type: loglikelihood_rolling\ndoc_to_text: \"\"\ndoc_to_target: \"{{text}}\"\n"
                      "metric_list:\n  - metric: bits_per_byte\n",
    "hrm_local_gen": "output_type: generate_until\ndoc_to_text: \"Question: {{question}}\\nAnswer:\"\n"
                     "doc_to_target: \"{{answer}}\"\ngeneration_kwargs:\n  until: [\"Question:\"]\n"
                     "  do_sample: false\n  max_gen_toks: 12\nmetric_list:\n  - metric: exact_match\n",
    "hrm_local_mc": "output_type: multiple_choice\ndoc_to_text: \"{{question}}\"\ndoc_to_choice: \"{{choices}}\"\n"
                    "doc_to_target: \"{{label}}\"\ntarget_delimiter: \"\"\nmetric_list:\n  - metric: acc\n",
}


def test_lm_eval_cli_scores_an_imported_run_offline(imported_run, tmp_path):
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "docs.jsonl").write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    for name, body in TASKS.items():
        (tasks / f"{name}.yaml").write_text(f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                                            f"    test: {tasks / 'docs.jsonl'}\ntest_split: test\n{body}")
    out = tmp_path / "out"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
    done = subprocess.run([sys.executable, "-m", "trainer.harness", "--model", "hrm", "--model_args",
                           f"run={imported_run}", "--tasks", ",".join(TASKS), "--include_path", str(tasks),
                           "--output_path", str(out), "--log_samples"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    results = json.loads(open(glob.glob(str(out / "*" / "results_*.json"))[0]).read())["results"]

    def samples(task):
        path = glob.glob(str(out / "*" / f"samples_{task}_*.jsonl"))[0]
        return sorted((json.loads(line) for line in open(path)), key=lambda s: s["doc_id"])

    from trainer.eval.generation import generate_ids, truncate_at
    from trainer.eval.load import load_evaluable
    from trainer.eval.datasets import Window
    from trainer.eval.suites.ppl import evaluate, model_nll_fn, token_byte_lengths

    ev = load_evaluable(imported_run)
    # loglikelihood_rolling: the same texts through trainer.eval's ppl code ([bos] + text, every token scored)
    windows = [Window(id=str(i), tokens=[ev.tokenizer.bos_id] + ev.encode_text(d["text"]), prompt_len=1)
               for i, d in enumerate(DOCS)]
    ours = evaluate(windows, model_nll_fn(ev), token_byte_lengths(ev.tokenizer.tokenizer)).metrics
    assert ours["bytes"] == sum(len(d["text"].encode()) for d in DOCS)
    assert results["hrm_local_text"]["bits_per_byte,none"] == pytest.approx(ours["bits_per_byte"], rel=1e-5)

    # generate_until: our recurrent generation, cut at lm-eval's "until"
    for doc, sample in zip(DOCS, samples("hrm_local_gen")):
        prompt = f"Question: {doc['question']}\nAnswer:"
        new = generate_ids(ev.model, [[ev.tokenizer.bos_id] + ev.encode_text(prompt)], 12,
                           eos_id=ev.tokenizer.eos_id, gate_scale=ev.gate_scale)[0]
        assert sample["resps"][0][0] == truncate_at(ev.decode(new), ["Question:"])

    # loglikelihood (multiple choice): log p(choice | [bos] + question) from one plain forward
    for doc, sample in zip(DOCS, samples("hrm_local_mc")):
        for choice, resp in zip(doc["choices"], sample["resps"]):
            context = [ev.tokenizer.bos_id] + ev.encode_text(doc["question"])
            whole = [ev.tokenizer.bos_id] + ev.encode_text(doc["question"] + choice)
            with torch.no_grad():
                logits = ev.model(torch.tensor([whole[:-1]]), torch.tensor([len(context)])).logits[0].float()
            logp = torch.log_softmax(logits, -1)[torch.arange(len(whole) - 1), torch.tensor(whole[1:])]
            assert float(resp[0][0]) == pytest.approx(float(logp[len(context) - 1:].sum()), abs=1e-4)
    assert 0.0 <= results["hrm_local_mc"]["acc,none"] <= 1.0 and np.isfinite(results["hrm_local_gen"]["exact_match,none"])
