"""Evaluation: scorers and a sandbox, independent of any model.

    generated text ──► answers.py       final number (GSM8K, arithmetic), choice letter (ScienceQA)
                  ├──► code_exec.py     program = problem + completion + tests ──► sandbox.py ──► pass@1
                  └──► text_metrics.py  BLEU / ROUGE-L of rationales, multiple-choice accuracy

Scorers take plain dicts with the datasets' own field names, so a corpus source or a raw file
can feed them. Modules are imported one by one (``from trainer.eval.answers import ...``); this
package imports nothing on its own, so ``sacrebleu`` loads only when text metrics are used.
"""
