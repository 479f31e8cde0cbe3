"""Evaluation: scorers and a sandbox (independent of any model), and the suites that run them on
checkpoints (``python -m trainer.eval``, ``python -m trainer.generate``, dev evals in training).

    generated text ──► answers.py       final number (GSM8K, arithmetic), choice letter (ScienceQA)
                  ├──► code_exec.py     program = problem + completion + tests ──► sandbox.py ──► pass@1
                  └──► text_metrics.py  BLEU / ROUGE-L of rationales, multiple-choice accuracy

    checkpoint ──► load.py (model, tokenizer, gate) ──► generation.py (batched recurrent step)
    datasets.py (--from, catalog, raw dir) ──► suites/<name>.py evaluate(items, generate_fn)
          ──► runner.py ──► <run>/eval/<tag>.{json,md}, <tag>/<suite>.jsonl; report.py (tables)
    dev.py: the same suites, small, at every validation ──► metrics.jsonl dev/<suite>/<metric>

Scorers take plain dicts with the datasets' own field names, so a corpus source or a raw file
can feed them. Modules are imported one by one (``from trainer.eval.answers import ...``); this
package imports nothing on its own, so ``sacrebleu`` loads only when text metrics are used.
"""
