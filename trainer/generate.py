"""``python -m trainer.generate RUN --prompt "..." [--temperature T] [--top-k K] [--top-p P]``

Continues each prompt with a trained model: greedy by default, or sampled with temperature,
top-k and top-p (nucleus); stops at EOS or after ``--max-new-tokens``. The prompt is rendered as
a corpus row's (``[bos] + encode(prompt)``; ``--no-bos`` for plain-text continuation), read once
in the chunked form, then every new token is one recurrent step (constant work per token).
RUN is a run name, run dir, best-model dir or checkpoint file, as for ``python -m trainer.eval``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m trainer.generate", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("ref", metavar="RUN", help="run name, run dir, best-model dir or checkpoint .pt file")
    p.add_argument("--prompt", action="append", default=[], help="prompt text (repeatable: generated as a batch)")
    p.add_argument("--prompt-file", type=Path, help="one prompt per line (\\n escapes allowed)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    p.add_argument("--top-k", type=int, help="sample from the k most likely tokens")
    p.add_argument("--top-p", type=float, help="sample from the smallest set with this much probability")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--no-bos", action="store_true", help="do not prefix the bos token (plain-text continuation)")
    p.add_argument("--json", action="store_true", help="print one JSON object per prompt")
    p.add_argument("--runs-dir", "--runs_dir", default="runs")
    p.add_argument("--data-dir", "--data_dir", help="data root with the catalog (to find the tokenizer)")
    p.add_argument("--tokenizer", type=Path, help="tokenizer.json (default: the run's)")
    p.add_argument("--gate-scale", type=float, help="override the HRM gate (default: the schedule at the step)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    return p


def _prompts(args) -> list[str]:
    from corpus.errors import UserError

    prompts = list(args.prompt)
    if args.prompt_file:
        if not args.prompt_file.is_file():
            raise UserError(f"--prompt-file {args.prompt_file} does not exist")
        prompts += [line.rstrip("\n").replace("\\n", "\n") for line in args.prompt_file.read_text().splitlines()
                    if line.strip()]
    if not prompts:
        raise UserError("give at least one --prompt (or --prompt-file)")
    return prompts


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    from corpus.cli import run_cli

    def body() -> int:
        from corpus.errors import UserError
        from trainer.eval.generation import Sampling, generate_ids
        from trainer.eval.load import load_evaluable

        if args.max_new_tokens < 1:
            raise UserError(f"--max-new-tokens must be >= 1, got {args.max_new_tokens}")
        if args.temperature < 0 or (args.top_k is not None and args.top_k < 1) or \
                (args.top_p is not None and not 0 < args.top_p <= 1):
            raise UserError("need --temperature >= 0, --top-k >= 1 and 0 < --top-p <= 1")
        if args.temperature == 0 and (args.top_k or args.top_p):
            raise UserError("--top-k/--top-p sample: give a --temperature > 0 too (0 is greedy)")
        if args.threads:
            import torch

            torch.set_num_threads(args.threads)
        prompts = _prompts(args)
        ev = load_evaluable(args.ref, args.runs_dir, args.data_dir, args.tokenizer, args.device, args.gate_scale)
        ids = [ev.encode_text(p) if args.no_bos else ev.encode_prompt(p) for p in prompts]
        if any(not i for i in ids):
            raise UserError("--no-bos with an empty prompt: nothing to continue")
        sampling = Sampling(args.temperature, args.top_k, args.top_p, args.seed)
        started = time.perf_counter()
        new = generate_ids(ev.model, ids, args.max_new_tokens, sampling=sampling, eos_id=ev.tokenizer.eos_id,
                           gate_scale=ev.gate_scale, batch_size=len(ids), device=ev.device)
        seconds = time.perf_counter() - started
        for prompt, p_ids, toks in zip(prompts, ids, new):
            stopped = "eos" if len(toks) < args.max_new_tokens else "length"
            text = ev.decode(toks)
            if args.json:
                print(json.dumps({"prompt": prompt, "completion": text, "prompt_tokens": len(p_ids),
                                  "new_tokens": len(toks), "token_ids": toks, "stopped": stopped}))
            else:
                print(f"{prompt}\033[1m{text}\033[0m" if sys.stdout.isatty() else prompt + text)
                print(f"[{len(toks)} tokens, stopped at {stopped}]", file=sys.stderr)
        total = sum(len(t) for t in new)
        print(f"{ev.tag} step {ev.step}: {total} tokens in {seconds:.2f} s ({total / max(seconds, 1e-9):.0f} tok/s)",
              file=sys.stderr)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
