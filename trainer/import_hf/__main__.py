"""``python -m trainer.import_hf ID_OR_DIR --out runs/NAME``: a pretrained Mamba2 as a run directory.

ID_OR_DIR is a local checkpoint directory (transformers' ``save_pretrained`` of a
Mamba2ForCausalLM, or mamba_ssm's config.json + pytorch_model.bin) or, online, a hub id
(state-spaces/mamba2-130m ... 2.7b). The result is what ``--init_from``, ``trainer.eval``,
``trainer.generate`` and ``hrm-lm-eval --model hrm`` take.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from trainer.import_hf import HRM_KEYS

    p = argparse.ArgumentParser(prog="python -m trainer.import_hf", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="ID_OR_DIR", help="checkpoint directory or hub id")
    p.add_argument("--out", required=True, type=Path, help="the run directory to create (runs/NAME)")
    p.add_argument("--tokenizer", help="tokenizer.json, HF tokenizer directory or hub id (default: the "
                                       "checkpoint's; for mamba_ssm checkpoints EleutherAI/gpt-neox-20b)")
    p.add_argument("--revision", help="hub revision (branch, tag or commit)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="dtype of the saved weights (default float32)")
    p.add_argument("--hrm", action="append", default=[], metavar="KEY=VALUE",
                   help=f"HRM size or switch of the added (shut) HRM, one of {', '.join(HRM_KEYS)} (repeatable)")
    return p


def parse_hrm(items: list[str]) -> dict:
    from corpus.errors import UserError
    from trainer.import_hf import HRM_KEYS

    out: dict = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or key not in HRM_KEYS:
            raise UserError(f"--hrm {item}: give KEY=VALUE with KEY one of {', '.join(HRM_KEYS)}")
        if key == "hrm_enabled":
            out[key] = value.strip().lower() in ("1", "true", "yes")
            continue
        try:
            out[key] = int(value)
        except ValueError:
            raise UserError(f"--hrm {item}: {key} needs an integer") from None
    return out


def main(argv: list[str] | None = None) -> int:
    from corpus.cli import run_cli

    args = build_parser().parse_args(argv)

    def body() -> int:
        from trainer.import_hf import import_checkpoint

        import_checkpoint(args.source, args.out, tokenizer=args.tokenizer, revision=args.revision,
                          hrm=parse_hrm(args.hrm), dtype=args.dtype)
        return 0

    return run_cli(body)


if __name__ == "__main__":
    sys.exit(main())
